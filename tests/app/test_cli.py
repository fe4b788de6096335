"""The `lingualoop` commands end to end, through typer's runner, on SQLite and PostgreSQL."""

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from db.engine import make_engine
from db.migrate import upgrade
from testing.factories import posts, write_csv

runner = CliRunner()


def run(url: str, *args: str, ok: bool = True) -> str:
    result = runner.invoke(cli, ["--database-url", url, *args], catch_exceptions=False)
    output = result.stdout + (result.stderr if result.stderr_bytes is not None else "")
    assert (result.exit_code == 0) == ok, output
    return output


@pytest.fixture
def url(db_url: str) -> str:
    if db_url.startswith("postgresql"):
        upgrade(make_engine(db_url))  # PostgreSQL is migrated deliberately, not on first use
    return db_url


def test_init_import_status_export(url: str, tmp_path: Path) -> None:
    assert "Created project study" in run(
        url, "init", "study", "--languages", "en,es", "--label-name", "pro=Supportive"
    )
    source = write_csv(tmp_path / "in.csv", posts(5, "en", "a", label="Supportive") + posts(3, "es", "b"))
    output = run(url, "import", str(source))
    assert "posts added" in output and "8" in output
    status = run(url, "status")
    assert "study: 8 posts, 5 labelled" in status
    out = tmp_path / "out.csv"
    assert "Exported 8 posts" in run(url, "export", str(out))
    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["label"] for row in rows).count("pro") == 5
    assert (tmp_path / "out.datasheet.md").exists()


def test_errors_are_one_clear_line(url: str, tmp_path: Path) -> None:
    run(url, "init", "study")
    bad = write_csv(tmp_path / "bad.csv", [{"id": "1", "text": "x", "lang": "qq"}])
    output = run(url, "import", str(bad), ok=False)
    assert "Error:" in output and "'qq' is not an ISO 639-1" in output and "Traceback" not in output
    assert "does not exist" in run(url, "import", str(tmp_path / "missing.csv"), ok=False)
    assert "No project named 'other'" in run(
        url, "export", str(tmp_path / "o.csv"), "--project", "other", ok=False
    )


def test_users(url: str) -> None:
    output = run(url, "users", "add", "amira", "--role", "researcher", "--languages", "ar,fr")
    assert "Password:" in output
    run(url, "users", "add", "ravi", "--password", "long enough pw")
    listing = run(url, "users", "list")
    assert "amira" in listing and "researcher" in listing and "ar, fr" in listing
    assert "changed" in run(url, "users", "passwd", "ravi", "--password", "another long pw")
    assert "already exists" in run(url, "users", "add", "ravi", ok=False)


def test_demo_creates_once(url: str) -> None:
    first = run(url, "demo", "--no-serve")
    assert "Created the demo project" in first and "admin" in first and "ar (Arabic)" in first
    assert "already exists" in run(url, "demo", "--no-serve")


def test_db_upgrade_and_current(sqlite_url: str) -> None:
    assert "was empty" in run(sqlite_url, "db", "upgrade")
    current = run(sqlite_url, "db", "current").split()
    assert current[0] == "current" and current[1].rstrip(",") == current[3] != "empty"


@pytest.mark.postgres
def test_postgres_not_migrated_gives_a_clear_error(postgres_url: str) -> None:
    assert "run `lingualoop db upgrade` first" in run(postgres_url, "status", ok=False)


def test_error_messages_keep_square_brackets(url: str, tmp_path: Path) -> None:
    run(url, "init", "study")
    bad = write_csv(tmp_path / "bad.csv", [{"id": "1", "text": "x", "label": "[pro]"}])
    assert "unknown label '[pro]'" in run(url, "import", str(bad), ok=False)
