"""The Label Studio integration against a real server (installed in its own virtual environment, cached between
runs): the project and its config, 20 tasks pushed with predictions, annotations by two users pulled twice without
duplicates, our app's answers kept beside Label Studio's, cancelled and deleted annotations left out, the model
version followed, and clear errors for a wrong token and a stopped server, with the sync job retrying."""

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user
from annotator.annotation.annotate import Answer, record_answer
from annotator.corpus.ingest import import_file
from annotator.corpus.projects import create_project
from annotator.jobloop import request_sync, run_job
from annotator.labelstudio.client import LabelStudioError, connect
from annotator.labelstudio.config import version_name
from annotator.labelstudio.sync import connect_project, pull, push, sync
from annotator.quality.guidelines import set_guideline
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import upgrade
from db.models import (
    Annotation,
    AnnotationSource,
    Item,
    Job,
    JobStatus,
    LabelStudioLink,
    LabelStudioTask,
    ModelStatus,
    ModelVersion,
    Prediction,
    Project,
    prediction_row,
)
from db.versions import select_current
from testing.factories import posts, write_csv
from testing.labelstudio import running_labelstudio
from tests.conftest import skip_or_fail

pytestmark = pytest.mark.labelstudio


@pytest.fixture(scope="module")
def labelstudio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    try:
        with running_labelstudio(tmp_path_factory.mktemp("labelstudio")) as settings:
            yield settings
    except LabelStudioError as error:
        skip_or_fail(f"no Label Studio server: {error}")


def _version(session: Session, project: Project, seed: int) -> ModelVersion:
    import numpy as np

    version = ModelVersion(project_id=project.id, backend="fast", base_model="e5", status=ModelStatus.READY)
    version.metrics = {"all": {"macro_f1": 0.5 + seed / 10}}
    session.add(version)
    session.flush()
    ids = list(session.scalars(select(Item.id).where(Item.project_id == project.id)))
    rng = np.random.default_rng(seed)
    session.add_all(
        [
            Prediction(**prediction_row(version.id, i, p))
            for i, p in zip(ids, rng.dirichlet(np.ones(4), len(ids)), strict=True)
        ]
    )
    session.flush()
    select_current(session, project.id)
    return version


Linked = tuple[sessionmaker[Session], sessionmaker[Session], int, Path, Any]
"""Writer sessions, read-only sessions, the project's id, the data folder, a Label Studio client."""


@pytest.fixture
def linked(labelstudio: Any, tmp_path: Path) -> Linked:
    engine = make_engine(f"sqlite:///{tmp_path / 'ls.db'}")
    upgrade(engine)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        project = create_project(session, f"ls-{tmp_path.name}"[:40], languages=["en", "ar"], by=OPERATOR)
        import_file(
            session,
            project,
            write_csv(tmp_path / "p.csv", posts(15, "en", "e") + posts(15, "ar", "a")),
            by=OPERATOR,
        )
        add_user(session, "ravi", email="ravi@example.org", by=OPERATOR)
        add_user(session, "amira", email="amira@example.org", by=OPERATOR)
        _version(session, project, 1)
        project_id = project.id
    connect_project(sessions, project_id, labelstudio.url, labelstudio.token, tmp_path, by=OPERATOR)
    readers = make_session_factory(engine, read_only=True)
    return sessions, readers, project_id, tmp_path, connect(labelstudio.url, labelstudio.token)


def _ls_user(client: Any, email: str) -> int:
    for user in client.users.list():
        if user.email == email:
            return int(user.id)
    return int(
        client.users.create(email=email, username=email.split("@")[0], password="a-long-password-1").id
    )


def _choose(label: str) -> list[dict[str, Any]]:
    return [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]


def test_push_pull_twice_and_both_sides_kept(linked: Linked) -> None:
    sessions, readers, project_id, data_dir, client = linked
    with session_scope(sessions) as session:
        link = session.scalars(select(LabelStudioLink)).one()
        ls_project = client.projects.get(id=link.ls_project_id)
        assert 'hotkey="1"' in ls_project.label_config and "HyperText" in ls_project.label_config
        arabic = "صنّف الموقف من الهجرة"
        set_guideline(session, session.get(Project, project_id), OPERATOR, arabic, "ar")  # type: ignore[arg-type]
    report = push(sessions, project_id, 20, data_dir, by=OPERATOR)
    instructions = client.projects.get(id=link.ls_project_id).expert_instruction
    assert arabic in instructions and "<h3>Arabic (ar)</h3>" in instructions  # a push brings them up to date
    assert report.tasks == 20 and report.with_predictions == 20
    with session_scope(sessions) as session:
        version = session.scalars(select(ModelVersion).where(ModelVersion.is_current)).one()
    tasks = list(client.tasks.list(project=link.ls_project_id, fields="all"))
    assert len(tasks) == 20
    first = tasks[0].predictions[0]
    assert first.model_version == version_name(version.id, "fast") and 0.25 <= first.score <= 1.0
    ravi, amira = _ls_user(client, "ravi@example.org"), _ls_user(client, "amira@example.org")
    for task in tasks[:6]:
        client.annotations.create(id=task.id, result=_choose("anti"), completed_by=ravi)
    for task in tasks[:3]:
        client.annotations.create(id=task.id, result=_choose("pro"), completed_by=amira)
    client.annotations.create(id=tasks[10].id, result=[], was_cancelled=True, completed_by=amira)  # skipped
    doomed = client.annotations.create(id=tasks[11].id, result=_choose("pro"), completed_by=amira)
    client.annotations.delete(id=doomed.id)  # deleted in Label Studio
    with session_scope(sessions) as session:  # our app's annotator labels a post that is also in Label Studio
        project = session.get(Project, project_id)
        noor = add_user(session, "noor", by=OPERATOR)
        with_ls = session.scalars(
            select(LabelStudioTask.item_id).where(LabelStudioTask.task_id == tasks[0].id)
        ).one()
        record_answer(session, project, noor, with_ls, Answer.of_label("neutral"))  # type: ignore[arg-type]
    first_pull = pull(sessions, readers, project_id, data_dir, by=OPERATOR)
    assert first_pull.annotations_added == 9 and first_pull.skipped_cancelled == 1
    again = pull(sessions, readers, project_id, data_dir, by=OPERATOR)
    assert again.annotations_added == 0 and again.unchanged == 9
    with session_scope(sessions) as session:
        from_ls = session.scalar(
            select(func.count()).where(Annotation.source == AnnotationSource.LABELSTUDIO)
        )
        assert from_ls == 9
        on_shared_post = session.scalars(select(Annotation.source).where(Annotation.item_id == with_ls)).all()
        assert sorted(on_shared_post) == [
            AnnotationSource.APP,
            AnnotationSource.LABELSTUDIO,
            AnnotationSource.LABELSTUDIO,
        ]


def test_open_tasks_follow_a_new_current_version(linked: Linked) -> None:
    sessions, readers, project_id, data_dir, client = linked
    push(sessions, project_id, 5, data_dir, by=OPERATOR)
    with session_scope(sessions) as session:
        newer = _version(session, session.get(Project, project_id), 3)  # type: ignore[arg-type]
        assert newer.is_current
    message = sync(sessions, readers, project_id, data_dir, by=OPERATOR)
    assert "5 open tasks got the new model's predictions" in message
    with session_scope(sessions) as session:
        link = session.scalars(select(LabelStudioLink)).one()
        assert link.model_version_id == newer.id
    assert sync(sessions, readers, project_id, data_dir, by=OPERATOR).endswith("changed annotations")
    assert client.projects.get(id=link.ls_project_id).model_version == version_name(newer.id, "fast")
    task = next(iter(client.tasks.list(project=link.ls_project_id, fields="all")))
    assert version_name(newer.id, "fast") in {p.model_version for p in task.predictions}


def test_a_wrong_token_and_a_stopped_server_give_clear_errors_and_the_sync_retries(
    linked: Linked, labelstudio: Any
) -> None:
    sessions, readers, project_id, data_dir, _ = linked
    with pytest.raises(LabelStudioError, match="refused the token") as refused:
        connect(labelstudio.url, "0" * 40)
    assert "0" * 40 not in str(refused.value)  # the token is never shown whole
    with pytest.raises(LabelStudioError, match="Cannot reach Label Studio"):
        connect("http://127.0.0.1:9", labelstudio.token)
    with session_scope(sessions) as session:
        session.scalars(select(LabelStudioLink)).one().url = "http://127.0.0.1:9"  # the server is gone
        job_id = request_sync(session, session.get(Project, project_id), by=OPERATOR).id  # type: ignore[arg-type]
    assert run_job(sessions, readers, data_dir, threading.Event(), lambda _: None)
    with session_scope(sessions) as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == JobStatus.QUEUED and job.attempts == 1  # will be retried
        assert "Cannot reach Label Studio" in (job.error or "")
        session.scalars(select(LabelStudioLink)).one().url = labelstudio.url  # the server is back
    assert run_job(sessions, readers, data_dir, threading.Event(), lambda _: None)
    with session_scope(sessions) as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == JobStatus.DONE and job.attempts == 2


def test_cli_connect_push_pull_never_prints_the_token(labelstudio: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from app.cli import cli

    url = f"sqlite:///{tmp_path / 'cli.db'}"

    def run(*args: str) -> str:
        result = CliRunner().invoke(cli, ["--database-url", url, "--data-dir", str(tmp_path), *args])
        assert result.exit_code == 0, result.output
        return result.output

    run("demo", "--no-serve")
    connected = run("labelstudio", "connect", "--url", labelstudio.url, "--token", labelstudio.token)
    assert (
        "Connected to" in connected
        and labelstudio.token not in connected
        and labelstudio.token[:4] in connected
    )
    assert (tmp_path / "labelstudio" / "token").stat().st_mode & 0o777 == 0o600
    assert "Pushed 10 tasks" in run("labelstudio", "push", "--n", "10")
    assert "Pulled 0 new" in run("labelstudio", "pull")
