"""The one job runner: a handler's message finishes the job; a JobError is recorded as it is and retried; any
other exception with its traceback; a stopping worker gives the job back; a cancelled job stays cancelled; stale
jobs are requeued with the runner's own timeout; only the handled kinds are claimed."""

import threading
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from db.engine import session_scope
from db.jobs import cancel_job, claim_next_job, enqueue
from db.models import Job, JobKind, JobStatus, utcnow
from db.runner import Handler, JobError, Report, RunnerSettings, run_job_loop, run_one_job, worker_id

FAST = RunnerSettings(heartbeat_seconds=0.05, heartbeat_timeout_seconds=60, poll_seconds=0.01)


def _queue(sessions: sessionmaker[Session], kind: JobKind = JobKind.SCORE) -> int:
    with session_scope(sessions) as session:
        return enqueue(session, kind, payload={"n": 1}).id


def _job(sessions: sessionmaker[Session], job_id: int) -> Job:
    with sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def _run(sessions: sessionmaker[Session], handler: Handler, stopping: threading.Event | None = None) -> bool:
    return run_one_job(
        sessions, {JobKind.SCORE: handler}, worker_id("test"), FAST, stopping or threading.Event(), print
    )


def test_a_handler_message_finishes_the_job_with_its_progress(sessions: sessionmaker[Session]) -> None:
    job_id = _queue(sessions)
    seen: list[str] = []

    def handler(job: Job, report: Report) -> str:
        seen.append(job.payload["n"])
        report(0.5, "half way")
        return "scored 1 post"

    assert _run(sessions, handler)
    job = _job(sessions, job_id)
    assert (job.status, job.progress, job.progress_message) == (JobStatus.DONE, 1.0, "scored 1 post")
    assert seen == [1] and job.worker_id is not None and job.worker_id.endswith(":test")
    assert not _run(sessions, handler)  # nothing left


def test_failures_are_retried_and_a_job_error_keeps_its_message(sessions: sessionmaker[Session]) -> None:
    job_id = _queue(sessions)

    def server_down(job: Job, report: Report) -> str:
        raise JobError("Label Studio did not answer at http://127.0.0.1:1")

    def broken(job: Job, report: Report) -> str:
        raise KeyError("model_version_id")

    _run(sessions, server_down)
    job = _job(sessions, job_id)
    assert job.status == JobStatus.QUEUED and job.error == "Label Studio did not answer at http://127.0.0.1:1"
    _run(sessions, broken)
    job = _job(sessions, job_id)
    assert job.status == JobStatus.QUEUED and job.error is not None and "Traceback" in job.error
    _run(sessions, broken)
    assert _job(sessions, job_id).status == JobStatus.FAILED  # three attempts


def test_a_stopping_worker_gives_the_job_back_and_a_cancelled_job_stays_cancelled(
    sessions: sessionmaker[Session],
) -> None:
    job_id = _queue(sessions)
    stopping = threading.Event()

    def stops_midway(job: Job, report: Report) -> str:
        stopping.set()
        report(0.3, "working")
        raise AssertionError("report() should have raised")

    _run(sessions, stops_midway, stopping)
    job = _job(sessions, job_id)
    assert job.status == JobStatus.QUEUED and job.attempts == 0  # given back, the attempt not counted

    def cancelled_midway(job: Job, report: Report) -> str:
        with session_scope(sessions) as session:
            cancel_job(session, job.id)
        report(0.3, "working")
        raise AssertionError("report() should have raised")

    _run(sessions, cancelled_midway)
    assert _job(sessions, job_id).status == JobStatus.CANCELLED


def test_only_handled_kinds_are_claimed_and_stale_jobs_requeued_with_the_runner_timeout(
    sessions: sessionmaker[Session],
) -> None:
    retrain = _queue(sessions, JobKind.RETRAIN)
    with session_scope(sessions) as session:
        claimed = claim_next_job(session, "dead-worker", kinds=[JobKind.RETRAIN])
        assert claimed is not None and claimed.id == retrain
        session.execute(
            update(Job).where(Job.id == retrain).values(heartbeat_at=utcnow() - timedelta(seconds=61))
        )
    score = _queue(sessions)
    ran: list[int] = []
    before: list[bool] = []

    def handler(job: Job, report: Report) -> str:
        ran.append(job.id)
        return "ok"

    run_job_loop(
        sessions,
        {JobKind.SCORE: handler},
        worker_id("test"),
        FAST,
        threading.Event(),
        once=True,
        log=print,
        before_claim=lambda session: before.append(True),
    )
    assert ran == [score] and before == [True]
    assert _job(sessions, retrain).status == JobStatus.QUEUED  # its worker stopped beating 61 s ago
