"""The Label Studio sync never calls the network inside a write transaction: while a fake Label Studio answers,
another process can write to the SQLite database at once (the real server is tested in tests/integration)."""

import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user
from annotator.corpus.ingest import import_file
from annotator.labelstudio import sync as ls_sync
from annotator.labelstudio.client import save_token
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import upgrade
from db.models import Annotation, AnnotationSource, Item, LabelStudioLink, LabelStudioTask
from testing.factories import make_project, posts, write_csv


class _FakeLabelStudio:
    """Answers like the SDK; on every network call it checks that a second connection can take the write lock."""

    def __init__(self, database: Path, tasks: list[Any]) -> None:
        self.database, self._tasks, self.writable_during_calls = database, tasks, []
        self.users = SimpleNamespace(list=self._users)
        self.tasks = SimpleNamespace(list=self._list)

    def _can_write(self) -> bool:
        connection = sqlite3.connect(self.database, timeout=0.2)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.rollback()
            return True
        except sqlite3.OperationalError:  # "database is locked": someone holds the write lock
            return False
        finally:
            connection.close()

    def _users(self) -> list[Any]:
        self.writable_during_calls.append(self._can_write())
        return [SimpleNamespace(id=7, email="ravi@example.org")]

    def _list(self, **_: Any) -> list[Any]:
        self.writable_during_calls.append(self._can_write())
        return self._tasks


def test_a_pull_calls_label_studio_between_transactions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "ls.db"  # SQLite: its write lock is what annotators would wait on
    engine = make_engine(f"sqlite:///{database}")
    upgrade(engine)
    sessions, readers = make_session_factory(engine), make_session_factory(engine, read_only=True)
    with session_scope(sessions) as session:
        project = make_project(session)
        import_file(session, project, write_csv(tmp_path / "p.csv", posts(2)), by=OPERATOR)
        add_user(session, "ravi", email="ravi@example.org", by=OPERATOR)
        link = LabelStudioLink(project_id=project.id, url="http://labelstudio.test", ls_project_id=1)
        session.add(link)
        session.flush()
        item_id = session.scalars(select(Item.id)).first()
        session.add(LabelStudioTask(link_id=link.id, item_id=item_id, task_id=101))
        project_id = project.id
    save_token(tmp_path, "t" * 40)
    annotation = {
        "id": 555,
        "completed_by": 7,
        "was_cancelled": False,
        "lead_time": 3.0,
        "result": [
            {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["anti"]}}
        ],
    }
    fake = _FakeLabelStudio(database, [SimpleNamespace(id=101, annotations=[annotation])])
    monkeypatch.setattr(ls_sync, "connect", lambda *_: fake)
    report = ls_sync.pull(sessions, readers, project_id, tmp_path, by=OPERATOR)
    assert report.annotations_added == 1
    assert fake.writable_during_calls == [True, True]  # no write lock held while Label Studio was asked
    with sessions() as session:
        stored = session.scalars(select(Annotation)).one()
        assert (stored.item_id, stored.label, stored.source, stored.external_ref) == (
            item_id,
            "anti",
            AnnotationSource.LABELSTUDIO,
            "555",
        )
    engine.dispose()
