"""The web side's job loop, run inside `lingualoop worker` beside the LoRA worker process (which takes retrain and
score jobs): fast_retrain (the fast model, no torch) and labelstudio_sync. Progress reports double as heartbeats;
a job whose worker dies is requeued by any worker; a failed sync is retried (three attempts)."""

import os
import socket
import threading
import traceback
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from annotator.errors import LingualoopError
from annotator.fastmodel import train_fast_version
from annotator.labelstudio.sync import sync
from db.engine import session_scope
from db.jobs import (
    claim_next_job,
    enqueue,
    fail_job,
    fail_versions_of_job,
    finish_job,
    heartbeat,
    release_job,
    requeue_stale_jobs,
)
from db.models import Job, JobKind, LabelStudioLink, Project, utcnow

Log = Callable[[str], None]
HEARTBEAT_TIMEOUT = timedelta(minutes=2)
SYNC_EVERY = timedelta(minutes=1)
KINDS = (JobKind.FAST_RETRAIN, JobKind.LABELSTUDIO_SYNC)


class _Stopped(Exception):
    """The job was cancelled or taken away, or the worker is stopping."""


def sync_dedupe_key(project_id: int) -> str:
    return f"labelstudio_sync:{project_id}"


def request_sync(session: Session, project: Project) -> Job:
    return enqueue(
        session, JobKind.LABELSTUDIO_SYNC, project_id=project.id, dedupe_key=sync_dedupe_key(project.id)
    )


def schedule_syncs(session: Session, every: timedelta = SYNC_EVERY) -> int:
    """Queue a sync for every project connected to Label Studio whose last sync is older than `every`."""
    due = session.scalars(
        select(Project)
        .join(LabelStudioLink, LabelStudioLink.project_id == Project.id)
        .where((LabelStudioLink.last_sync_at.is_(None)) | (LabelStudioLink.last_sync_at < utcnow() - every))
    ).all()
    for project in due:
        request_sync(session, project)
    return len(due)


def _run(
    sessions: sessionmaker[Session], job: Job, data_dir: Path, report: Callable[[float, str], None]
) -> str:
    if job.project_id is None:
        raise ValueError(f"a {job.kind.value} job needs a project")
    if job.kind == JobKind.FAST_RETRAIN:
        try:
            version = train_fast_version(
                sessions, job.project_id, data_dir / "embeddings", report, job_id=job.id
            )
        except LingualoopError as reason:  # e.g. not enough labels yet: nothing to do, not a failure
            return f"nothing to do: {reason}"
        return f"fast model version {version} ready"
    report(0.1, "syncing with Label Studio")
    with session_scope(sessions) as session:
        project = session.get(Project, job.project_id)
        assert project is not None
        return sync(session, project, data_dir)


def run_job(sessions: sessionmaker[Session], data_dir: Path, stopping: threading.Event, log: Log) -> bool:
    """Claim and run at most one of this loop's jobs. True when a job was run."""
    worker = f"{socket.gethostname()}:{os.getpid()}:web"
    with session_scope(sessions) as session:
        requeue_stale_jobs(session, HEARTBEAT_TIMEOUT)
        schedule_syncs(session)
        job = claim_next_job(session, worker, kinds=KINDS)
        if job is None:
            return False
        session.expunge(job)

    def report(progress: float, message: str) -> None:
        with session_scope(sessions) as session:
            alive = heartbeat(session, job.id, worker, progress=progress, message=message)
        if stopping.is_set() or not alive:
            raise _Stopped("the worker is stopping" if alive else "the job was cancelled")

    try:
        message = _run(sessions, job, data_dir, report)
    except Exception as error:
        with session_scope(sessions) as session:
            fail_versions_of_job(session, job.id, "its job stopped")
            if isinstance(error, _Stopped):
                release_job(session, job.id, worker)  # queued again for the next worker (unless cancelled)
            else:
                detail = (
                    str(error)
                    if isinstance(error, LingualoopError)
                    else "".join(traceback.format_exception(error))
                )
                fail_job(session, job.id, worker, detail)  # queued again while attempts remain
        log(f"{job.kind.value} job {job.id}: stopped ({type(error).__name__}: {error})")
        return True
    with session_scope(sessions) as session:
        finish_job(session, job.id, worker, message)
    log(f"{job.kind.value} job {job.id}: {message}")
    return True


def run_job_loop(
    sessions: sessionmaker[Session],
    data_dir: Path,
    stopping: threading.Event,
    *,
    once: bool = False,
    poll_seconds: float = 2.0,
    log: Log = lambda message: print(message, flush=True),
) -> None:
    """Serve fast_retrain and labelstudio_sync jobs until `stopping` is set (or, with once=True, one pass)."""
    while not stopping.is_set():
        ran = run_job(sessions, data_dir, stopping, log)
        if once:
            return
        if not ran:
            stopping.wait(poll_seconds)
