"""Backup and restore on both databases: what was there at the backup comes back, and bad files are refused."""

from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from annotator.accounts.access import OPERATOR
from annotator.demo import create_demo_project
from db.backup import BackupError, backup, restore
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import upgrade
from db.models import Annotation, Item


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
    saved = backup(db_url, tmp_path / "lingualoop.backup")
    assert saved.stat().st_mode & 0o777 == 0o600
    with pytest.raises(BackupError, match="already exists"):
        backup(db_url, saved)
    engine = make_engine(db_url)
    with session_scope(make_session_factory(engine)) as session:  # lose every label after the backup
        session.execute(delete(Annotation))
    engine.dispose()
    assert _counts(db_url)[1] == 0
    restore(db_url, saved)
    assert _counts(db_url) == before


def test_a_file_that_is_not_a_backup_is_refused_and_nothing_changes(db_url: str, tmp_path: Path) -> None:
    _demo_database(db_url)
    before = _counts(db_url)
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(BackupError, match="nothing was restored"):
        restore(db_url, junk)
    assert _counts(db_url) == before
