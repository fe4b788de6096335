"""Backup and restore on both databases: what was there at the backup comes back (the rows and the model versions'
files), old backups of the database alone still restore, and bad files are refused."""

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from annotator.accounts.access import OPERATOR
from annotator.demo import create_demo_project
from db.backup import MANIFEST, BackupError, RestoreReport, _dump_database, backup, restore
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import upgrade
from db.models import Annotation, Backend, Item, ModelStatus, ModelVersion, Project
from db.versions import adapter_folder, stored_folder, version_folder


def _counts(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        counts = (
            session.scalar(select(func.count(Item.id))) or 0,
            session.scalar(select(func.count(Annotation.id))) or 0,
        )
    engine.dispose()
    return counts


def _demo_database(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    with session_scope(make_session_factory(engine)) as session:
        create_demo_project(session, by=OPERATOR)
    engine.dispose()


def test_restore_brings_back_what_was_backed_up(db_url: str, tmp_path: Path) -> None:
    _demo_database(db_url)
    before = _counts(db_url)
    assert before[0] > 0 and before[1] > 0
    saved = backup(db_url, tmp_path / "data", tmp_path / "lingualoop.backup").path
    assert saved.stat().st_mode & 0o777 == 0o600
    with pytest.raises(BackupError, match="already exists"):
        backup(db_url, tmp_path / "data", saved)
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:  # lose every label after the backup
        session.execute(delete(Annotation))
    engine.dispose()
    assert _counts(db_url)[1] == 0
    assert restore(db_url, tmp_path / "data", saved) == RestoreReport(had_files=True, restored=[], missing=[])
    assert _counts(db_url) == before


def test_a_file_that_is_not_a_backup_is_refused_and_nothing_changes(db_url: str, tmp_path: Path) -> None:
    _demo_database(db_url)
    before = _counts(db_url)
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(BackupError, match="nothing was restored"):
        restore(db_url, tmp_path / "data", junk)
    assert _counts(db_url) == before


# --- The model versions' files travel with the database ------------------------------------------------------


def _add_versions(url: str, data: Path, elsewhere: Path) -> list[int]:
    """Four versions: files under the data folder (relative row), files at an old absolute path outside it, a
    row whose files are gone, and an ensemble (no files of its own)."""
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as session:
        project_id = session.scalars(select(Project.id)).first()
        assert project_id is not None
        versions = [
            ModelVersion(project_id=project_id, backend=b, base_model="m", status=ModelStatus.READY)
            for b in (Backend.FAST, Backend.LORA, Backend.ENCODER, Backend.ENSEMBLE)
        ]
        session.add_all(versions)
        session.flush()
        relative, absolute, gone, _ensemble = versions
        relative.adapter_path = stored_folder(project_id, relative.id)
        (adapter_folder(data, project_id, relative.id) / "member-1").mkdir(parents=True)
        (adapter_folder(data, project_id, relative.id) / "member-1" / "weights.bin").write_bytes(b"relative")
        old_folder = adapter_folder(elsewhere, project_id, absolute.id)  # as rows were written before
        old_folder.mkdir(parents=True)
        (old_folder / "adapter_config.json").write_text("{}", encoding="utf-8")
        absolute.adapter_path = str(old_folder)
        gone.adapter_path = stored_folder(project_id, gone.id)
        ids = [v.id for v in versions]
    engine.dispose()
    return ids


def _folder(url: str, data: Path, version_id: int) -> Path | None:
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        version = session.get(ModelVersion, version_id)
        assert version is not None
        found = version_folder(data, version)
    engine.dispose()
    return found


def test_a_backup_carries_the_versions_files_and_restore_puts_them_in_another_data_folder(
    db_url: str, tmp_path: Path
) -> None:
    _demo_database(db_url)
    data, elsewhere, new_data = tmp_path / "data", tmp_path / "elsewhere", tmp_path / "new-data"
    relative, absolute, gone, ensemble = _add_versions(db_url, data, elsewhere)
    written = backup(db_url, data, tmp_path / "study.backup")
    assert (written.carried, written.left_out) == ([relative, absolute], [gone])
    assert written.path.stat().st_mode & 0o777 == 0o600
    with tarfile.open(written.path) as archive:
        names = set(archive.getnames())
    assert MANIFEST in names and ("lingualoop.db" in names or "lingualoop.pgdump" in names)
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob(".lingualoop-backup-*"))

    shutil.rmtree(elsewhere)  # the old absolute path is gone too: the machine is new
    stale = new_data / "adapters" / "project-1" / f"version-{relative}"
    stale.mkdir(parents=True)
    (stale / "left-over.txt").write_text("from before", encoding="utf-8")
    done = restore(db_url, new_data, written.path)
    assert done == RestoreReport(had_files=True, restored=[relative, absolute], missing=[gone])
    moved = _folder(db_url, new_data, relative)
    assert moved is not None and (moved / "member-1" / "weights.bin").read_bytes() == b"relative"
    assert not (moved / "left-over.txt").exists()  # the backup's folder replaced what was there
    old_row = _folder(db_url, new_data, absolute)  # an absolute row, found under the new data folder
    assert (
        old_row is not None
        and old_row.is_relative_to(new_data)
        and (old_row / "adapter_config.json").exists()
    )
    assert _folder(db_url, new_data, ensemble) is None
    assert not list(new_data.glob(".lingualoop-restore-*"))  # the staging folder is cleaned up


def test_an_old_backup_of_the_database_alone_restores_and_says_the_files_were_not_in_it(
    db_url: str, tmp_path: Path
) -> None:
    _demo_database(db_url)
    relative, _absolute, gone, _ensemble = _add_versions(db_url, tmp_path / "data", tmp_path / "elsewhere")
    old = tmp_path / "old.backup"
    _dump_database(db_url, old)  # what `lingualoop backup` wrote before backups carried model files
    shutil.rmtree(tmp_path / "elsewhere")
    done = restore(db_url, tmp_path / "new-data", old)
    assert not done.had_files and done.restored == []
    assert done.missing == [relative, _absolute, gone]  # none of the files is on the "new machine"


def test_an_archive_that_reaches_outside_the_data_folder_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    _demo_database(sqlite_url)
    before = _counts(sqlite_url)
    crafted = tmp_path / "crafted.backup"
    manifest = json.dumps({"format": 1, "database": "sqlite", "versions": {"1": "../outside"}}).encode()
    with tarfile.open(crafted, "w") as archive:
        for name, content in ((MANIFEST, manifest), ("../outside/evil.txt", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    with pytest.raises(BackupError, match=r"could not be read .*outside.*; nothing was restored"):
        restore(sqlite_url, tmp_path / "data", crafted)
    assert not (tmp_path / "outside").exists() and _counts(sqlite_url) == before
