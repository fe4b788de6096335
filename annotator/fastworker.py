"""The fast model's job loop: claims fast_retrain jobs and trains the embedding + logistic-regression model.

It runs inside `lingualoop worker` beside the LoRA worker process (which handles retrain and score jobs), and
needs no torch. Progress reports double as heartbeats; a job whose worker dies is requeued by any worker."""

import os
import socket
import threading
import traceback
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from annotator.errors import LingualoopError
from annotator.fastmodel import train_fast_version
from db.engine import session_scope
from db.jobs import (
    claim_next_job,
    fail_job,
    fail_versions_of_job,
    finish_job,
    heartbeat,
    release_job,
    requeue_stale_jobs,
)
from db.models import JobKind

Log = Callable[[str], None]
HEARTBEAT_TIMEOUT = timedelta(minutes=2)


class _Stopped(Exception):
    """The job was cancelled or taken away, or the worker is stopping."""


def run_fast_job(
    sessions: sessionmaker[Session], cache_dir: Path, stopping: threading.Event, log: Log
) -> bool:
    """Claim and run at most one fast_retrain job. True when a job was run."""
    worker = f"{socket.gethostname()}:{os.getpid()}:fast"
    with session_scope(sessions) as session:
        requeue_stale_jobs(session, HEARTBEAT_TIMEOUT)
        job = claim_next_job(session, worker, kinds=[JobKind.FAST_RETRAIN])
        if job is None:
            return False
        job_id, project_id = job.id, job.project_id

    def report(progress: float, message: str) -> None:
        with session_scope(sessions) as session:
            alive = heartbeat(session, job_id, worker, progress=progress, message=message)
        if stopping.is_set() or not alive:
            raise _Stopped("the worker is stopping" if alive else "the job was cancelled")

    try:
        if project_id is None:
            raise ValueError("a fast_retrain job needs a project")
        version = train_fast_version(sessions, project_id, cache_dir, report, job_id=job_id)
        message = f"fast model version {version} ready"
    except LingualoopError as reason:  # e.g. not enough labels yet: nothing to do, not a failure
        message = f"nothing to do: {reason}"
    except Exception as error:
        with session_scope(sessions) as session:
            fail_versions_of_job(session, job_id, "its fast job stopped")
            if isinstance(error, _Stopped):
                release_job(session, job_id, worker)  # queued again for the next worker (unless cancelled)
            else:
                fail_job(session, job_id, worker, "".join(traceback.format_exception(error)))
        log(f"fast job {job_id}: stopped ({type(error).__name__}: {error})")
        return True
    with session_scope(sessions) as session:
        finish_job(session, job_id, worker, message)
    log(f"fast job {job_id}: {message}")
    return True


def run_fast_worker(
    sessions: sessionmaker[Session],
    cache_dir: Path,
    stopping: threading.Event,
    *,
    once: bool = False,
    poll_seconds: float = 2.0,
    log: Log = lambda message: print(message, flush=True),
) -> None:
    """Serve fast_retrain jobs until `stopping` is set (or, with once=True, after one pass)."""
    while not stopping.is_set():
        ran = run_fast_job(sessions, cache_dir, stopping, log)
        if once:
            return
        if not ran:
            stopping.wait(poll_seconds)
