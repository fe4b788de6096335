"""The Label Studio sync never calls the network inside a write transaction: while a fake Label Studio answers,
another process can write to the SQLite database at once (the real server is tested in tests/integration).
Connecting takes only Label Studio's 404 for a deleted project: a timeout or another error creates nothing."""

import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from label_studio_sdk.core.api_error import ApiError
from label_studio_sdk.errors import NotFoundError as LSNotFoundError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user
from annotator.corpus.ingest import import_file
from annotator.labelstudio import sync as ls_sync
from annotator.labelstudio.client import LabelStudioError, save_token
from annotator.quality.guidelines import set_guideline
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import upgrade
from db.models import Annotation, AnnotationSource, Item, LabelStudioLink, LabelStudioTask, Project
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
        set_guideline(session, project, OPERATOR, "The project's guideline.")
        shown_id = set_guideline(session, project, OPERATOR, "The English version.", "en").id
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
        assert stored.guideline_id == shown_id  # the post's language's version at pull time
    engine.dispose()


class _FakeProjects:
    """Label Studio's projects endpoint: `get` answers as `lookup` says (a project, or raises); every call checks
    that another connection can take the write lock meanwhile."""

    def __init__(self, database: Path, lookup: Exception | None = None, next_id: int = 42) -> None:
        self.database, self.lookup, self.next_id = database, lookup, next_id
        self.created: list[dict[str, Any]] = []
        self.updated: list[dict[str, Any]] = []
        self.deleted: list[int] = []
        self.writable_during_calls: list[bool] = []
        self.while_creating: Any = None

    def _call(self) -> None:
        self.writable_during_calls.append(_FakeLabelStudio(self.database, [])._can_write())

    def get(self, id: int) -> Any:
        self._call()
        if self.lookup is not None:
            raise self.lookup
        return SimpleNamespace(id=id)

    def create(self, **fields: Any) -> Any:
        self._call()
        self.created.append(fields)
        if self.while_creating is not None:
            self.while_creating()
        return SimpleNamespace(id=self.next_id)

    def update(self, id: int, **fields: Any) -> None:
        self._call()
        self.updated.append({"id": id, **fields})

    def delete(self, id: int) -> None:
        self._call()
        self.deleted.append(id)


def _connectable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, projects: _FakeProjects, linked: int | None
) -> tuple[sessionmaker[Session], int]:
    """A project (linked to Label Studio project `linked`, if given) and a fake Label Studio answering for it."""
    engine = make_engine(f"sqlite:///{projects.database}")
    upgrade(engine)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        project = make_project(session)
        if linked is not None:
            session.add(
                LabelStudioLink(project_id=project.id, url="http://labelstudio.test", ls_project_id=linked)
            )
        project_id = project.id
    monkeypatch.setattr(ls_sync, "connect", lambda *_: SimpleNamespace(projects=projects))
    return sessions, project_id


def _linked_to(sessions: sessionmaker[Session]) -> int | None:
    with sessions() as session:
        return session.scalars(select(LabelStudioLink.ls_project_id)).one()


def test_connecting_creates_the_project_with_no_transaction_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    projects = _FakeProjects(tmp_path / "ls.db")
    sessions, project_id = _connectable(tmp_path, monkeypatch, projects, linked=None)
    link = ls_sync.connect_project(sessions, project_id, "http://ls.test/", "t" * 40, tmp_path, by=OPERATOR)
    assert (link.url, link.ls_project_id) == ("http://ls.test", 42)
    assert len(projects.created) == 1 and projects.created[0]["title"] == "lingualoop: study"
    assert projects.writable_during_calls == [True]  # no write lock held while Label Studio was asked
    assert _linked_to(sessions) == 42
    assert (tmp_path / "labelstudio" / "token").read_text() == "t" * 40


def test_connecting_again_updates_the_linked_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    projects = _FakeProjects(tmp_path / "ls.db")
    sessions, project_id = _connectable(tmp_path, monkeypatch, projects, linked=7)
    link = ls_sync.connect_project(sessions, project_id, "http://ls.test", "t" * 40, tmp_path, by=OPERATOR)
    assert link.ls_project_id == 7 and projects.created == []
    assert [u["id"] for u in projects.updated] == [7] and "<Choices" in projects.updated[0]["label_config"]
    assert projects.writable_during_calls == [True, True]


def test_the_instructions_carry_each_languages_translation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    projects = _FakeProjects(tmp_path / "ls.db")
    sessions, project_id = _connectable(tmp_path, monkeypatch, projects, linked=7)
    with session_scope(sessions) as session:
        project = session.get(Project, project_id)
        assert project is not None
        project.languages = ["en", "ar"]
        set_guideline(session, project, OPERATOR, "Label the <stance>.")
        set_guideline(session, project, OPERATOR, "ضع علامة على الموقف", "ar")
    ls_sync.connect_project(sessions, project_id, "http://ls.test", "t" * 40, tmp_path, by=OPERATOR)
    sent = projects.updated[0]
    assert sent["show_instruction"] is True
    assert "Label the &lt;stance&gt;." in sent["expert_instruction"]  # escaped: Label Studio renders HTML
    assert '<h3>Arabic (ar)</h3><div dir="rtl" lang="ar"' in sent["expert_instruction"]
    assert "ضع علامة على الموقف" in sent["expert_instruction"]


@pytest.mark.parametrize(
    ("failure", "says"),
    [
        (httpx.ReadTimeout("timed out"), "did not answer within 60 s"),
        (ApiError(status_code=500, body="boom"), "answered 500"),
        (httpx.ConnectError("refused"), "Lost the connection"),
    ],
)
def test_a_linked_project_that_cannot_be_looked_up_is_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: Exception, says: str
) -> None:
    projects = _FakeProjects(tmp_path / "ls.db", lookup=failure)
    sessions, project_id = _connectable(tmp_path, monkeypatch, projects, linked=7)
    with pytest.raises(LabelStudioError) as raised:
        ls_sync.connect_project(sessions, project_id, "http://ls.test", "t" * 40, tmp_path, by=OPERATOR)
    assert says in str(raised.value) and "looking up its project 7" in str(raised.value)
    assert "no new project was created" in str(raised.value)
    assert projects.created == [] and projects.updated == []  # a slow server is not a deleted project
    assert _linked_to(sessions) == 7


@pytest.mark.parametrize("gone", [LSNotFoundError(body="gone"), ApiError(status_code=404, body="gone")])
def test_a_linked_project_deleted_in_label_studio_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gone: Exception
) -> None:
    projects = _FakeProjects(tmp_path / "ls.db", lookup=gone)
    sessions, project_id = _connectable(tmp_path, monkeypatch, projects, linked=7)
    link = ls_sync.connect_project(sessions, project_id, "http://ls.test", "t" * 40, tmp_path, by=OPERATOR)
    assert link.ls_project_id == 42 and len(projects.created) == 1 and projects.deleted == []
    assert _linked_to(sessions) == 42


def test_a_link_made_by_someone_else_meanwhile_stands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    projects = _FakeProjects(tmp_path / "ls.db")
    sessions, project_id = _connectable(tmp_path, monkeypatch, projects, linked=None)

    def another_researcher_connects() -> None:  # while our create is on the network
        with session_scope(sessions) as session:
            session.add(LabelStudioLink(project_id=project_id, url="http://ls.test", ls_project_id=9))

    projects.while_creating = another_researcher_connects
    link = ls_sync.connect_project(sessions, project_id, "http://ls.test", "t" * 40, tmp_path, by=OPERATOR)
    assert link.ls_project_id == 9 and _linked_to(sessions) == 9
    assert projects.deleted == [42]  # ours, unlinked, does not stay behind as a second project
