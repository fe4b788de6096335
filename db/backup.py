"""Backups of the whole database: SQLite's online backup API (consistent while the app and the worker write), and
pg_dump / pg_restore in the custom format for PostgreSQL. A backup is written to a temporary name, checked, then
renamed, so a failed or interrupted backup never leaves a file that looks complete."""

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import make_url


class BackupError(RuntimeError):
    """A backup or restore that could not be done; the message says why."""


def _pg_tool(name: str) -> str:
    explicit = os.environ.get("LINGUALOOP_PG_BIN")
    candidates = [Path(explicit) / name] if explicit else []
    candidates += sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    found = shutil.which(name)
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    raise BackupError(f"{name} was not found: install the PostgreSQL client tools or set LINGUALOOP_PG_BIN.")


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection string without the password, and the environment that carries it (so `ps` never
    shows it)."""
    parsed = make_url(url)
    env = os.environ | ({"PGPASSWORD": parsed.password} if parsed.password else {})
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("An in-memory SQLite database cannot be backed up.")
    return Path(database)


def backup(url: str, destination: Path) -> Path:
    """Write a backup of the database at `url` to `destination` (which must not exist yet)."""
    if destination.exists():
        raise BackupError(f"{destination} already exists: choose a new file name.")
    partial = destination.with_name(destination.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        if make_url(url).get_backend_name() == "sqlite":
            source = sqlite3.connect(_sqlite_path(url))
            target = sqlite3.connect(partial)
            try:
                source.backup(target)
                if target.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                    raise BackupError("The backup copy failed its integrity check.")
            finally:
                target.close()
                source.close()
        else:
            dsn, env = _libpq(url)
            done = subprocess.run(
                [
                    _pg_tool("pg_dump"),
                    "--format=custom",
                    "--no-owner",
                    f"--file={partial}",
                    f"--dbname={dsn}",
                ],
                env=env,
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise BackupError(f"pg_dump failed: {done.stderr.strip()[-1000:]}")
        partial.replace(destination)
    finally:
        partial.unlink(missing_ok=True)
    os.chmod(destination, 0o600)  # it holds password hashes and every label
    return destination


def restore(url: str, source: Path) -> None:
    """Replace the database at `url` with the backup in `source` (stop the app and the workers first)."""
    if not source.is_file():
        raise BackupError(f"{source} does not exist.")
    if make_url(url).get_backend_name() == "sqlite":
        try:
            backup_db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
            if backup_db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise BackupError(f"{source} is damaged (integrity check failed); nothing was restored.")
        except sqlite3.DatabaseError as error:
            raise BackupError(f"{source} is not a SQLite backup ({error}); nothing was restored.") from None
        target = sqlite3.connect(_sqlite_path(url))
        try:
            backup_db.backup(target)  # one step: the target is replaced page by page inside one transaction
        finally:
            target.close()
            backup_db.close()
        return
    dsn, env = _libpq(url)
    listed = subprocess.run(
        [_pg_tool("pg_restore"), "--list", str(source)], env=env, capture_output=True, text=True
    )
    if listed.returncode != 0:
        raise BackupError(
            f"{source} is not a pg_dump backup: {listed.stderr.strip()[-500:]}; nothing was restored."
        )
    done = subprocess.run(
        [
            _pg_tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            f"--dbname={dsn}",
            str(source),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed (nothing was changed): {done.stderr.strip()[-1000:]}")
