"""The job queue: dedupe, claim, heartbeat, retry, release, stale requeue; concurrent claims on PostgreSQL."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_session_factory, session_scope
from db.jobs import (
    cancel_job,
    claim_next_job,
    dedupe_key,
    enqueue,
    fail_job,
    finish_job,
    heartbeat,
    release_job,
    requeue_stale_jobs,
)
from db.models import Job, JobKind, JobStatus, utcnow


def test_one_queued_retrain_per_project(session: Session) -> None:
    first = enqueue(session, JobKind.RETRAIN, dedupe_key=dedupe_key(JobKind.RETRAIN, 1))
    again = enqueue(session, JobKind.RETRAIN, dedupe_key=dedupe_key(JobKind.RETRAIN, 1))
    other = enqueue(session, JobKind.RETRAIN, dedupe_key=dedupe_key(JobKind.RETRAIN, 2))
    assert first.id == again.id != other.id
    claimed = claim_next_job(session, "w1")
    assert claimed is not None and claimed.id == first.id
    # While the first runs, a new request can be queued again.
    assert enqueue(session, JobKind.RETRAIN, dedupe_key=dedupe_key(JobKind.RETRAIN, 1)).id != first.id


def test_claim_heartbeat_finish(session: Session) -> None:
    job = enqueue(session, JobKind.SCORE, payload={"version": 3})
    assert claim_next_job(session, "w1", kinds=[JobKind.RETRAIN]) is None
    claimed = claim_next_job(session, "w1")
    assert claimed is not None and claimed.id == job.id and claimed.attempts == 1
    assert claim_next_job(session, "w2") is None
    assert heartbeat(session, job.id, "w1", progress=0.5, message="step 5/10")
    assert not heartbeat(session, job.id, "w2")  # not w2's job
    session.refresh(job)
    assert (job.progress, job.progress_message) == (0.5, "step 5/10")
    assert finish_job(session, job.id, "w1")
    session.refresh(job)
    assert job.status == JobStatus.DONE and job.progress == 1.0


def test_failures_retry_then_fail(session: Session) -> None:
    job = enqueue(session, JobKind.RETRAIN, max_attempts=2)
    for expected in (JobStatus.QUEUED, JobStatus.FAILED):
        assert claim_next_job(session, "w") is not None
        assert fail_job(session, job.id, "w", "Traceback: boom") == expected
    session.refresh(job)
    assert job.error == "Traceback: boom" and job.attempts == 2


def test_release_does_not_count_an_attempt(session: Session) -> None:
    job = enqueue(session, JobKind.RETRAIN)
    claim_next_job(session, "w")
    assert release_job(session, job.id, "w")
    session.refresh(job)
    assert job.status == JobStatus.QUEUED and job.attempts == 0


def test_cancel_stops_the_heartbeat(session: Session) -> None:
    job = enqueue(session, JobKind.RETRAIN)
    claim_next_job(session, "w")
    assert cancel_job(session, job.id)
    assert not heartbeat(session, job.id, "w")
    assert not finish_job(session, job.id, "w")


def test_stale_jobs_are_requeued(session: Session) -> None:
    job = enqueue(session, JobKind.RETRAIN)
    claim_next_job(session, "dead-worker")
    assert requeue_stale_jobs(session, timedelta(seconds=60)) == 0
    assert requeue_stale_jobs(session, timedelta(seconds=60), now=utcnow() + timedelta(seconds=61)) == 1
    session.refresh(job)
    assert job.status == JobStatus.QUEUED and "stopped sending heartbeats" in (job.error or "")
    claimed = claim_next_job(session, "new-worker")
    assert claimed is not None and claimed.id == job.id and claimed.attempts == 2


def test_stale_job_superseded_by_a_queued_duplicate(session: Session) -> None:
    old = enqueue(session, JobKind.RETRAIN, dedupe_key="retrain:9")
    claim_next_job(session, "dead")
    enqueue(session, JobKind.RETRAIN, dedupe_key="retrain:9")
    requeue_stale_jobs(session, timedelta(seconds=0), now=utcnow() + timedelta(seconds=1))
    session.refresh(old)
    assert old.status == JobStatus.CANCELLED


def _claim_all(
    sessions: sessionmaker[Session], worker: str, claimed: list[tuple[str, int]], errors: list[BaseException]
) -> None:
    try:
        while True:
            with session_scope(sessions) as session:
                job = claim_next_job(session, worker)
                if job is None:
                    return
                claimed.append((worker, job.id))
    except BaseException as error:  # surfaced by the test below, not lost in the thread
        errors.append(error)


@pytest.mark.parametrize("workers", [4])
def test_concurrent_workers_never_share_a_job(engine: Engine, workers: int) -> None:
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        for _ in range(60):
            enqueue(session, JobKind.SCORE)
    claimed: list[tuple[str, int]] = []
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_claim_all, args=(sessions, f"w{i}", claimed, errors)) for i in range(workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    ids = [job_id for _, job_id in claimed]
    assert len(ids) == 60 and len(set(ids)) == 60
    with sessions() as session:
        owners = dict(session.execute(select(Job.id, Job.worker_id)).all())
    assert all(owners[job_id] == worker for worker, job_id in claimed)


def test_release_after_requeue_does_not_cancel_the_job(session: Session) -> None:
    job = enqueue(session, JobKind.RETRAIN, dedupe_key="retrain:5")
    claim_next_job(session, "slow")
    requeue_stale_jobs(session, timedelta(seconds=0), now=utcnow() + timedelta(seconds=1))
    assert not release_job(session, job.id, "slow")  # no longer the slow worker's job
    session.refresh(job)
    assert job.status == JobStatus.QUEUED


def test_versions_of_a_job_that_fails_for_good_are_failed(session: Session) -> None:
    from db.models import ModelStatus, ModelVersion, Project

    project = Project(name="p")
    session.add(project)
    session.flush()
    job = enqueue(session, JobKind.RETRAIN, project_id=project.id, max_attempts=1)
    claim_next_job(session, "w")
    version = ModelVersion(
        project_id=project.id,
        backend="lora",
        base_model="m",
        status=ModelStatus.TRAINING,
        training_snapshot={"job_id": job.id},
    )
    session.add(version)
    session.flush()
    requeue_stale_jobs(session, timedelta(seconds=0), now=utcnow() + timedelta(seconds=1))
    session.refresh(version)
    assert job.status == JobStatus.FAILED and version.status == ModelStatus.FAILED
