"""The worker as a real process: a job runs end to end; SIGKILL mid-job leaves the previous version current and
the job is picked up again after the heartbeat timeout; SIGTERM gives the job back."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from annotator.accounts.access import OPERATOR
from annotator.demo import create_demo_project
from annotator.retraining.requests import request_retrain
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import upgrade
from db.models import (
    Job,
    JobStatus,
    ModelStatus,
    ModelVersion,
    Prediction,
    Project,
    User,
)
from testing.factories import add_label, unlabelled_pool_items
from trainer.config import LoraSettings, ModelSettings, TrainSettings, WorkerSettings
from trainer.lora_retrain import run_retrain

LINGUALOOP = str(Path(sys.executable).parent / "lingualoop")


@pytest.fixture
def setup(tmp_path: Path, tiny_llama: Path) -> tuple[str, sessionmaker[Session], int, dict[str, str]]:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        project_id = create_demo_project(session, by=OPERATOR).project.id
    settings = WorkerSettings(
        data_dir=tmp_path,
        model=ModelSettings(base_model=str(tiny_llama)),
        lora=LoraSettings(r=4, alpha=8),
        train=TrainSettings(epochs=1),
    )
    run_retrain(sessions, settings, project_id, lambda fraction, message: None)  # version 1, current
    with session_scope(sessions) as session:
        user = session.scalar(select(User).where(User.username == "ravi"))
        for item_id in unlabelled_pool_items(session, 8):
            add_label(session, item_id, user.id, "anti")  # type: ignore[union-attr]
        request_retrain(session, session.get(Project, project_id), by=OPERATOR)  # type: ignore[arg-type]
    env = os.environ | {
        "LINGUALOOP_BASE_MODEL": str(tiny_llama),
        "LINGUALOOP_EPOCHS": "400",
        "LINGUALOOP_DATA_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    return url, sessions, project_id, env


def _start(url: str, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [LINGUALOOP, "--database-url", url, "worker", "--heartbeat-every", "0.5", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for_training(
    sessions: sessionmaker[Session], worker: subprocess.Popen[str], timeout: float = 120
) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sessions() as session:
            job = session.scalar(select(Job))
            if job is not None and "training: step" in job.progress_message:
                session.expunge(job)
                return job
        if worker.poll() is not None:
            raise AssertionError(f"the worker exited early: {worker.stdout.read() if worker.stdout else ''}")
        time.sleep(0.2)
    raise AssertionError("the job never started training")


def _restart_after_heartbeat_timeout(url: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A second worker, started once the first one's heartbeat (timeout 1 s here) has gone stale."""
    time.sleep(1.5)
    second = subprocess.run(
        [LINGUALOOP, "--database-url", url, "worker", "--once", "--heartbeat-timeout", "1", "--epochs", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert second.returncode == 0, second.stdout + second.stderr
    return second


def _current(sessions: sessionmaker[Session]) -> list[int]:
    with sessions() as session:
        return list(session.scalars(select(ModelVersion.id).where(ModelVersion.is_current)))


def test_sigkill_mid_job_then_another_worker_finishes_it(
    setup: tuple[str, sessionmaker[Session], int, dict[str, str]],
) -> None:
    url, sessions, _, env = setup
    worker = _start(url, env)
    _wait_for_training(sessions, worker)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    assert _current(sessions) == [1]
    with sessions() as session:
        job = session.scalar(select(Job))
        assert job is not None and job.status == JobStatus.RUNNING  # nobody knows yet that its worker died
        training = session.scalars(
            select(ModelVersion).where(ModelVersion.status == ModelStatus.TRAINING)
        ).all()
        assert len(training) == 1 and not training[0].is_current
    second = _restart_after_heartbeat_timeout(url, env)
    assert "requeued 1 job" in second.stdout
    with sessions() as session:
        job = session.scalar(select(Job))
        assert job is not None and job.status == JobStatus.DONE and job.attempts == 2
        versions = {v.id: v for v in session.scalars(select(ModelVersion))}
        assert versions[2].status == ModelStatus.FAILED and "interrupted" in (versions[2].error or "")
        assert versions[3].status == ModelStatus.READY and versions[3].parent_id == 1
    assert len(_current(sessions)) == 1


def test_sigterm_gives_the_job_back(setup: tuple[str, sessionmaker[Session], int, dict[str, str]]) -> None:
    url, sessions, _, env = setup
    worker = _start(url, env)
    _wait_for_training(sessions, worker)
    worker.send_signal(signal.SIGTERM)
    output, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, output
    assert "giving the job back" in output
    with sessions() as session:
        job = session.scalar(select(Job))
        assert job is not None and job.status == JobStatus.QUEUED and job.attempts == 0
        assert session.scalar(select(ModelVersion).where(ModelVersion.id == 2)).status == ModelStatus.FAILED  # type: ignore[union-attr]
    assert _current(sessions) == [1]


@pytest.mark.reliability
@pytest.mark.parametrize("point", ["scoring", "before-ready"])
def test_sigkill_while_scoring_or_before_ready_never_publishes_a_partial_version(
    setup: tuple[str, sessionmaker[Session], int, dict[str, str]], point: str
) -> None:
    url, sessions, _, env = setup
    crashed = subprocess.run(
        [LINGUALOOP, "--database-url", url, "worker", "--once", "--epochs", "1"],
        env=env | {"LINGUALOOP_FAILPOINT": point},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert crashed.returncode != 0  # the model worker died with SIGKILL
    assert _current(sessions) == [1]
    with sessions() as session:
        version = session.get(ModelVersion, 2)
        assert version is not None and version.status != ModelStatus.READY and not version.is_current
        scored = session.scalar(select(func.count()).where(Prediction.model_version_id == 2))
        assert scored > 0  # the crash came after predictions were written, which nobody may read
    _restart_after_heartbeat_timeout(url, env)
    with sessions() as session:
        job = session.scalar(select(Job))
        assert job is not None and job.status == JobStatus.DONE and job.attempts == 2
        versions = {v.id: v for v in session.scalars(select(ModelVersion))}
        assert versions[2].status == ModelStatus.FAILED
        assert session.scalar(select(func.count()).where(Prediction.model_version_id == 2)) == 0
        assert versions[3].status == ModelStatus.READY
    assert len(_current(sessions)) == 1
