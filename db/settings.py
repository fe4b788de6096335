"""Settings read once at the entry point from the environment and passed down."""

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from core.files import write_secret


def _default_data_dir() -> Path:
    return Path(os.environ.get("LINGUALOOP_DATA_DIR", "lingualoop-data")).resolve()


@dataclass(frozen=True)
class Settings:
    """Where lingualoop keeps its state."""

    data_dir: Path = field(default_factory=_default_data_dir)
    """Folder for the SQLite database, model caches and adapters (LINGUALOOP_DATA_DIR)."""

    database_url: str = ""
    """SQLAlchemy URL (LINGUALOOP_DATABASE_URL); empty means a SQLite file in data_dir."""

    def __post_init__(self) -> None:
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.data_dir / 'lingualoop.db'}")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


class SecretFileError(RuntimeError):
    """A secrets file that others could read, or that cannot be read."""


def secret_from_env(name: str, environ: dict[str, str] | None = None) -> str | None:
    """A secret from the environment variable `name`, or from the file named by `name`_FILE, which must be
    readable by its owner only (mode 0600 or stricter); None when neither is set."""
    env = os.environ if environ is None else environ
    if env.get(name):
        return env[name]
    file_name = env.get(f"{name}_FILE")
    if not file_name:
        return None
    path = Path(file_name)
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            raise SecretFileError(
                f"{path} (from {name}_FILE) can be read by other users (mode {oct(mode & 0o777)}): "
                f"run `chmod 600 {path}`."
            )
        return path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise SecretFileError(f"{path} (from {name}_FILE) cannot be read: {error.strerror}.") from None


def masked(secret: str | None) -> str:
    """How a secret appears in logs and on screen: its first four characters at most."""
    if not secret:
        return "(none)"
    return secret[:4] + "…" if len(secret) > 8 else "…"


def settings_from_env(database_url: str | None = None, data_dir: Path | None = None) -> Settings:
    """Build the settings from explicit values, falling back to the environment (the database URL, which may
    carry a password, also from LINGUALOOP_DATABASE_URL_FILE)."""
    return Settings(
        data_dir=(data_dir or _default_data_dir()).resolve(),
        database_url=database_url or secret_from_env("LINGUALOOP_DATABASE_URL") or "",
    )


def session_secret(data_dir: Path, environ: dict[str, str] | None = None) -> bytes:
    """The key that signs sign-in tokens: LINGUALOOP_SESSION_SECRET (or its _FILE), else a random key kept in
    data_dir/session.secret (mode 0600, made on first use). Every app server sharing a database should share it."""
    given = secret_from_env("LINGUALOOP_SESSION_SECRET", environ)
    if given:
        return given.encode()
    path = data_dir / "session.secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        write_secret(path, secrets.token_hex(32))
    return path.read_text(encoding="utf-8").strip().encode()
