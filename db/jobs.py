"""The job queue on the database: enqueue with a dedupe key, claim, heartbeat, finish, requeue stale jobs.

Claiming is a compare-and-set UPDATE on SQLite and `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several workers
(on several machines, sharing one PostgreSQL) never run the same job. Functions take a session and never
commit: the worker loop owns its (short) transactions.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import Job, JobKind, JobStatus, ModelStatus, ModelVersion, Prediction, utcnow
from db.payloads import JobPayload
from db.snapshots import TrainingSnapshot


def _rowcount(result: Any) -> int:
    """Rows an UPDATE changed (a CursorResult's rowcount; the ORM's Result type does not declare it)."""
    return int(result.rowcount)


def dedupe_key(kind: JobKind, project_id: int) -> str:
    """The one key per (kind, project) under which at most one job is queued (a partial unique index)."""
    return f"{kind.value}:{project_id}"


def enqueue(
    session: Session,
    kind: JobKind,
    *,
    project_id: int | None = None,
    payload: JobPayload | dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    max_attempts: int = 3,
) -> Job:
    """Queue a job; with a dedupe key, an already queued job with that key is returned instead. The payload is the
    kind's typed payload (db.payloads), or its JSON."""
    if not isinstance(payload, dict | None):
        if kind != payload.KIND:
            raise ValueError(f"a {type(payload).__name__} is no payload for a {kind.value} job")
        payload = payload.to_json()
    if dedupe_key is not None:
        existing = queued_with_key(session, dedupe_key)
        if existing is not None:
            return existing
    job = Job(
        kind=kind,
        project_id=project_id,
        payload=payload or {},
        dedupe_key=dedupe_key,
        max_attempts=max_attempts,
    )
    try:
        with session.begin_nested():
            session.add(job)
    except IntegrityError:
        # Another process queued the same key between our check and our insert.
        existing = queued_with_key(session, dedupe_key or "")
        if existing is None:
            raise
        return existing
    return job


def queued_with_key(session: Session, dedupe_key: str, other_than: int | None = None) -> Job | None:
    """The queued job with this dedupe key, if any."""
    query = select(Job).where(Job.dedupe_key == dedupe_key, Job.status == JobStatus.QUEUED)
    if other_than is not None:
        query = query.where(Job.id != other_than)
    return session.scalar(query)


def claim_next_job(session: Session, worker_id: str, kinds: Sequence[JobKind] | None = None) -> Job | None:
    """Take the oldest queued job (of the given kinds) for this worker, or None when there is none."""
    query = select(Job.id).where(Job.status == JobStatus.QUEUED).order_by(Job.created_at, Job.id)
    if kinds:
        query = query.where(Job.kind.in_(list(kinds)))
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        job_id = session.scalar(query.limit(1).with_for_update(skip_locked=True))
        if job_id is None:
            return None
        session.execute(update(Job).where(Job.id == job_id).values(**_running(worker_id, now)))
        return session.get(Job, job_id, populate_existing=True)
    # SQLite has no row locks (SQLAlchemy drops FOR UPDATE there): compare-and-set on the status instead.
    for job_id in session.scalars(query.limit(5)).all():
        claimed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
            .values(**_running(worker_id, now))
            .execution_options(synchronize_session=False)
        )
        if _rowcount(claimed) == 1:
            return session.get(Job, job_id, populate_existing=True)
    return None


def _running(worker_id: str, now: datetime) -> dict[str, Any]:
    """The columns a claim sets."""
    return {
        "status": JobStatus.RUNNING,
        "worker_id": worker_id,
        "attempts": Job.attempts + 1,
        "started_at": now,
        "heartbeat_at": now,
        "error": None,
    }


def _owned(job_id: int, worker_id: str) -> Any:
    return (Job.id == job_id) & (Job.worker_id == worker_id) & (Job.status == JobStatus.RUNNING)


def heartbeat(
    session: Session,
    job_id: int,
    worker_id: str,
    *,
    progress: float | None = None,
    message: str | None = None,
) -> bool:
    """Record that the job is alive (and its progress). False when the job is no longer this worker's:
    it was cancelled, or requeued after a missed heartbeat; the worker should then stop working on it."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if progress is not None:
        values["progress"] = max(0.0, min(1.0, progress))
    if message is not None:
        values["progress_message"] = message[:500]
    result = session.execute(
        update(Job)
        .where(_owned(job_id, worker_id))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


def finish_job(session: Session, job_id: int, worker_id: str, message: str = "done") -> bool:
    result = session.execute(
        update(Job)
        .where(_owned(job_id, worker_id))
        .values(status=JobStatus.DONE, progress=1.0, progress_message=message[:500], finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


def fail_job(session: Session, job_id: int, worker_id: str, error: str) -> JobStatus | None:
    """Record the error; the job is queued again while it has attempts left, else it fails for good."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is None or job.worker_id != worker_id or job.status != JobStatus.RUNNING:
        return None
    job.error = error[-20_000:]
    _retry_or_fail(session, job)
    session.flush()
    return job.status


def _retry_or_fail(session: Session, job: Job) -> None:
    if job.attempts >= job.max_attempts:
        job.status, job.finished_at = JobStatus.FAILED, utcnow()
        fail_versions_of_job(session, job.id, "its job failed")
    elif (
        job.dedupe_key is not None and queued_with_key(session, job.dedupe_key, other_than=job.id) is not None
    ):
        # A newer request for the same work is already queued: that one will do it.
        job.status, job.finished_at = JobStatus.CANCELLED, utcnow()
        job.progress_message = "superseded by a newer queued job"
        fail_versions_of_job(session, job.id, "its job was superseded")
    else:
        job.status, job.worker_id, job.heartbeat_at = JobStatus.QUEUED, None, None


def fail_versions_of_job(session: Session, job_id: int, reason: str) -> int:
    """Model versions that a job left unfinished (training or scoring) are failed, their predictions removed;
    a retry of the job starts a new version."""
    unfinished = session.scalars(
        select(ModelVersion).where(ModelVersion.status.in_([ModelStatus.TRAINING, ModelStatus.SCORING]))
    ).all()
    failed = [v for v in unfinished if TrainingSnapshot.of(v.training_snapshot).job_id == job_id]
    for version in failed:
        version.status, version.error, version.is_current = (
            ModelStatus.FAILED,
            f"interrupted: {reason}",
            False,
        )
        session.execute(delete(Prediction).where(Prediction.model_version_id == version.id))
    session.flush()
    return len(failed)


def release_job(session: Session, job_id: int, worker_id: str) -> bool:
    """Give a job back untouched (the worker is shutting down): queued again, the attempt not counted."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is None or job.worker_id != worker_id or job.status != JobStatus.RUNNING:
        return False  # no longer ours: requeued after a missed heartbeat, or cancelled
    if job.dedupe_key is not None and queued_with_key(session, job.dedupe_key, other_than=job_id) is not None:
        result = session.execute(
            update(Job)
            .where(_owned(job_id, worker_id))
            .values(
                status=JobStatus.CANCELLED, finished_at=utcnow(), progress_message="superseded while stopping"
            )
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1
    result = session.execute(
        update(Job)
        .where(_owned(job_id, worker_id))
        .values(
            status=JobStatus.QUEUED,
            worker_id=None,
            heartbeat_at=None,
            attempts=Job.attempts - 1,
            progress=0.0,
            progress_message="released by a stopping worker",
        )
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


def cancel_job(session: Session, job_id: int) -> bool:
    """Cancel a queued or running job; a running worker notices at its next heartbeat."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
        .values(status=JobStatus.CANCELLED, finished_at=utcnow(), progress_message="cancelled")
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


def requeue_stale_jobs(session: Session, timeout: timedelta, now: datetime | None = None) -> int:
    """Queue again (or fail, without attempts left) running jobs whose worker stopped sending heartbeats."""
    cutoff = (now or utcnow()) - timeout
    # Row locks on PostgreSQL, so two workers never requeue (and then overwrite) the same job; SQLite's
    # writing transactions are exclusive already.
    stale = session.scalars(
        select(Job)
        .where(Job.status == JobStatus.RUNNING, Job.heartbeat_at < cutoff)
        .with_for_update(skip_locked=True)
    ).all()
    for job in stale:
        job.error = f"worker {job.worker_id} stopped sending heartbeats"
        _retry_or_fail(session, job)
        session.flush()
    return len(stale)
