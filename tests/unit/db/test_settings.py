"""Secrets come from the environment or from a file only its owner can read; they are never shown whole."""

import os
from pathlib import Path

import pytest

from db.settings import SecretFileError, masked, secret_from_env, settings_from_env


def test_secret_from_a_private_file(tmp_path: Path) -> None:
    secret = tmp_path / "db-url"
    secret.write_text("postgresql+psycopg://u:pw@host/db\n")
    os.chmod(secret, 0o600)
    assert secret_from_env("X", {"X_FILE": str(secret)}) == "postgresql+psycopg://u:pw@host/db"
    assert secret_from_env("X", {"X": "direct", "X_FILE": str(secret)}) == "direct"
    assert secret_from_env("X", {}) is None


def test_a_secret_file_others_can_read_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("abc")
    os.chmod(secret, 0o644)
    with pytest.raises(SecretFileError, match="chmod 600"):
        secret_from_env("X", {"X_FILE": str(secret)})
    with pytest.raises(SecretFileError, match="cannot be read"):
        secret_from_env("X", {"X_FILE": str(tmp_path / "missing")})


def test_database_url_file_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "db-url"
    secret.write_text(f"sqlite:///{tmp_path / 'x.db'}")
    os.chmod(secret, 0o600)
    monkeypatch.delenv("LINGUALOOP_DATABASE_URL", raising=False)
    monkeypatch.setenv("LINGUALOOP_DATABASE_URL_FILE", str(secret))
    assert settings_from_env().database_url == f"sqlite:///{tmp_path / 'x.db'}"


def test_masked_shows_at_most_four_characters() -> None:
    assert masked("0123456789abcdef") == "0123…"
    assert masked("short") == "…" and masked(None) == "(none)"
