"""Backups of a project's state: the whole database (SQLite's online backup API, consistent while the app and the
worker write, or pg_dump in the custom format for PostgreSQL) and the model versions' files, in one tar archive;
restore puts both back under the current data folder. A backup is written to a temporary name, checked, then
renamed, so a failed or interrupted backup never leaves a file that looks complete. Backups written before they
carried model files (the database file alone) still restore."""

import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, make_url, select
from sqlalchemy.pool import NullPool

from core.files import atomic_path
from db.models import ModelVersion
from db.versions import adapter_folder, resolve_folder, stored_folder

MANIFEST = "lingualoop-backup.json"
"""The archive member that says what a backup holds; an archive without it is not ours."""
FORMAT = 1
DATABASE_MEMBERS = {"sqlite": "lingualoop.db", "postgresql": "lingualoop.pgdump"}


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


@dataclass(frozen=True)
class VersionFiles:
    """A model version that has files, as its database row records them."""

    id: int
    project_id: int
    stored: str
    """Its adapter_path column: relative to the data folder, or absolute in rows written before that."""

    @property
    def member(self) -> str:
        """Its folder inside a backup archive (and under the data folder once restored)."""
        return stored_folder(self.project_id, self.id)


@dataclass(frozen=True)
class BackupReport:
    path: Path
    carried: list[int]
    """Versions whose files are in the backup."""
    left_out: list[int]
    """Versions whose files were not found under the data folder, so the backup does not hold them."""


@dataclass(frozen=True)
class RestoreReport:
    had_files: bool
    """False for a backup of the database alone (written before backups carried model files)."""
    restored: list[int]
    """Versions whose files were put back under the data folder."""
    missing: list[int]
    """Versions of the restored database whose files are not on this machine after the restore."""


def _backend(url: str) -> str:
    return "sqlite" if make_url(url).get_backend_name() == "sqlite" else "postgresql"


def _dump_database(url: str, target: Path) -> None:
    """Write the database at `url` to `target`: a SQLite file checked for integrity, or a pg_dump archive."""
    if _backend(url) == "sqlite":
        source = sqlite3.connect(_sqlite_path(url))
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
            if copy.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise BackupError("The backup copy failed its integrity check.")
        finally:
            copy.close()
            source.close()
        return
    dsn, env = _libpq(url)
    done = subprocess.run(
        [_pg_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={target}", f"--dbname={dsn}"],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip()[-1000:]}")


def versions_with_files(url: str) -> list[VersionFiles]:
    """The versions whose rows record files (ensembles and versions still training have none), in id order."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(ModelVersion.id, ModelVersion.project_id, ModelVersion.adapter_path)
                .where(ModelVersion.adapter_path.is_not(None), ModelVersion.adapter_path != "")
                .order_by(ModelVersion.id)
            ).all()
    finally:
        engine.dispose()
    return [VersionFiles(version_id, project_id, stored or "") for version_id, project_id, stored in rows]


def _private_file(path: Path) -> int:
    """A new file only its owner can read, from the first byte on: a backup holds password hashes and every label."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)


def _add_json(archive: tarfile.TarFile, name: str, content: object) -> None:
    data = json.dumps(content, indent=2).encode("utf-8")
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o600
    archive.addfile(info, io.BytesIO(data))


def backup(url: str, data_dir: Path, destination: Path) -> BackupReport:
    """Write a backup of the database at `url` and of its model versions' files under `data_dir` to
    `destination` (which must not exist yet): a tar archive of the database copy, a manifest and one folder per
    version. The versions are read from the copy itself (SQLite) or from the database just after pg_dump
    (PostgreSQL), and a version's files are complete before its row records them and never change afterwards, so
    the archive is consistent while the app and the worker write."""
    if destination.exists():
        raise BackupError(f"{destination} already exists: choose a new file name.")
    backend = _backend(url)
    with (
        atomic_path(destination) as partial,
        tempfile.TemporaryDirectory(dir=destination.parent, prefix=".lingualoop-backup-") as staging,
    ):
        database = Path(staging) / DATABASE_MEMBERS[backend]  # the folder is its owner's alone (0700)
        _dump_database(url, database)
        listed = versions_with_files(f"sqlite:///{database}" if backend == "sqlite" else url)
        found = {v.id: resolve_folder(data_dir, v.project_id, v.id, v.stored) for v in listed}
        carried = [v for v in listed if (folder := found[v.id]) is not None and folder.is_dir()]
        left_out = [v.id for v in listed if v not in carried]
        manifest = {
            "format": FORMAT,
            "database": backend,
            "versions": {str(v.id): v.member for v in carried},
            "left_out": left_out,
        }
        with (
            os.fdopen(_private_file(partial), "wb") as handle,
            tarfile.open(fileobj=handle, mode="w") as archive,
        ):
            _add_json(archive, MANIFEST, manifest)
            archive.add(database, arcname=database.name)
            for version in carried:
                archive.add(str(found[version.id]), arcname=version.member)
    os.chmod(destination, 0o600)
    return BackupReport(destination, [v.id for v in carried], left_out)


def _read_manifest(source: Path) -> dict[str, object] | None:
    """The manifest of a backup archive; None for a backup of the database alone (a SQLite file or a pg_dump)."""
    if not tarfile.is_tarfile(source):
        return None
    with tarfile.open(source) as archive:
        try:
            member = archive.getmember(MANIFEST)
        except KeyError:
            return None  # a tar that is not ours (pg_dump --format=tar, say): restored as a database alone
        handle = archive.extractfile(member)
        if handle is None:
            raise BackupError(f"{source} has a damaged manifest; nothing was restored.")
        manifest: dict[str, object] = json.loads(handle.read().decode("utf-8"))
    if manifest.get("format") != FORMAT:
        raise BackupError(
            f"{source} is a backup of format {manifest.get('format')}, which this lingualoop does not know; "
            "nothing was restored."
        )
    return manifest


def _is_within(name: str, wanted: tuple[str, ...]) -> bool:
    return any(name == w or name.startswith(w + "/") for w in wanted)


def _unpack(source: Path, manifest: dict[str, object], staging: Path) -> tuple[Path, dict[int, Path]]:
    """Extract the database and the version folders the manifest names into `staging`; returns the database
    file and each version's staged folder. The "data" filter refuses links and paths outside `staging`."""
    database = str(manifest.get("database"))
    if database not in DATABASE_MEMBERS:
        raise BackupError(f"The manifest of {source} names no known database; nothing was restored.")
    folders = manifest.get("versions")
    versions = {int(k): str(v) for k, v in folders.items()} if isinstance(folders, dict) else {}
    wanted = (DATABASE_MEMBERS[database], *versions.values())
    try:
        with tarfile.open(source) as archive:
            members = [m for m in archive.getmembers() if _is_within(m.name, wanted)]
            archive.extractall(staging, members=members, filter="data")
    except (tarfile.TarError, OSError) as error:
        raise BackupError(f"{source} could not be read ({error}); nothing was restored.") from None
    if not (staging / DATABASE_MEMBERS[database]).is_file():
        raise BackupError(f"{source} holds no database; nothing was restored.")
    return staging / DATABASE_MEMBERS[database], {k: staging / v for k, v in versions.items()}


def _put_back(data_dir: Path, url: str, staged: dict[int, Path]) -> tuple[list[int], list[int]]:
    """Move the staged folders of the restored database's versions to their place under `data_dir` (replacing
    what was there); returns the versions restored and those whose files are still not on this machine."""
    restored, missing = [], []
    for version in versions_with_files(url):
        folder = staged.get(version.id)
        if folder is not None and folder.is_dir():
            target = adapter_folder(data_dir, version.project_id, version.id)
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            folder.replace(target)
            restored.append(version.id)
        found = resolve_folder(data_dir, version.project_id, version.id, version.stored)
        if found is None or not found.is_dir():
            missing.append(version.id)
    return restored, missing


def restore(url: str, data_dir: Path, source: Path) -> RestoreReport:
    """Replace the database at `url` with the backup in `source`, and put the model versions' files it holds
    back under `data_dir` (stop the app and the workers first). Everything is unpacked and checked before the
    database is touched."""
    if not source.is_file():
        raise BackupError(f"{source} does not exist.")
    try:
        manifest = _read_manifest(source)
    except (tarfile.TarError, OSError, ValueError) as error:
        raise BackupError(f"{source} is a damaged backup ({error}); nothing was restored.") from None
    if manifest is None:
        _restore_database(url, source)
        missing = [
            v.id
            for v in versions_with_files(url)
            if not ((found := resolve_folder(data_dir, v.project_id, v.id, v.stored)) and found.is_dir())
        ]
        return RestoreReport(had_files=False, restored=[], missing=missing)
    if manifest.get("database") != _backend(url):
        raise BackupError(
            f"{source} is a backup of a {manifest.get('database')} database and cannot be restored into "
            f"{_backend(url)}; nothing was restored."
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    # Staged under the data folder, so each version folder moves into place with a rename.
    with tempfile.TemporaryDirectory(dir=data_dir, prefix=".lingualoop-restore-") as staging:
        database, staged = _unpack(source, manifest, Path(staging))
        _restore_database(url, database)
        restored, missing = _put_back(data_dir, url, staged)
    return RestoreReport(had_files=True, restored=restored, missing=missing)


def _restore_database(url: str, source: Path) -> None:
    """Replace the database at `url` with the database backup in `source` (a SQLite file or a pg_dump)."""
    if make_url(url).get_backend_name() == "sqlite":
        try:
            backup_db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
            if backup_db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise BackupError(f"{source} is damaged (integrity check failed); nothing was restored.")
        except sqlite3.DatabaseError as error:
            raise BackupError(f"{source} is not a SQLite backup ({error}); nothing was restored.") from None
        _sqlite_path(url).parent.mkdir(parents=True, exist_ok=True)  # restoring onto a new machine's path
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
