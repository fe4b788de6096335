"""The one job runner, for both sides: requeue stale jobs, claim one job of the kinds a process handles, run its
handler with progress reports that double as heartbeats (and a thread that keeps beating between them), and record
the outcome. The model worker (trainer/) and the web side's loop (annotator/jobloop.py) differ only in their handlers.

A handler takes the job and a `report(progress, message)` function and returns the message the job finishes with.
`report` raises JobInterrupted when the job was cancelled or given to another worker, or the worker is stopping:
the job is then given back untouched (or stays cancelled). Any other exception fails the attempt (the job is queued
again while it has attempts left); a JobError's message is recorded as it is, anything else with its traceback.
"""

import contextlib
import os
import socket
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from core.progress import Log as Log  # re-exported for the job handlers
from core.progress import Report as Report
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
from db.models import Job, JobKind

Handler = Callable[[Job, Report], str]


class JobInterrupted(Exception):
    """The job was cancelled or taken away, or the worker is stopping: stop working on it."""


class JobError(Exception):
    """A failure whose message says it all (recorded without a traceback), such as a server that did not answer."""


@dataclass(frozen=True)
class RunnerSettings:
    heartbeat_seconds: float = 10.0
    """Seconds between heartbeats while a job runs (progress reports beat too)."""
    heartbeat_timeout_seconds: float = 120.0
    """A running job whose heartbeat is older than this is requeued by any worker."""
    poll_seconds: float = 2.0
    """Seconds between looks at the queue when it is empty."""


def worker_id(role: str) -> str:
    """host:pid:role, so the jobs table says which process of which machine ran a job."""
    return f"{socket.gethostname()}:{os.getpid()}:{role}"


class _Heartbeats:
    """Progress reports for one claimed job, and a thread that keeps beating between them."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        job_id: int,
        worker: str,
        settings: RunnerSettings,
        stopping: threading.Event,
    ) -> None:
        self.sessions, self.job_id, self.worker = sessions, job_id, worker
        self.settings, self.stopping = settings, stopping
        self.lost = threading.Event()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat_forever, daemon=True)

    def beat(self, progress: float | None = None, message: str | None = None) -> None:
        with self._lock, session_scope(self.sessions) as session:
            if not heartbeat(session, self.job_id, self.worker, progress=progress, message=message):
                self.lost.set()

    def report(self, progress: float, message: str) -> None:
        """Progress for the app's progress bars; raises JobInterrupted when the job must stop."""
        if self.stopping.is_set():
            raise JobInterrupted("the worker is stopping")
        self.beat(progress, message)
        if self.lost.is_set():
            raise JobInterrupted("the job was cancelled or given to another worker")

    def _beat_forever(self) -> None:
        while not self._done.wait(self.settings.heartbeat_seconds):
            # A missed beat is retried; a dead database shows up in the job itself.
            with contextlib.suppress(Exception):
                self.beat()

    def __enter__(self) -> "_Heartbeats":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join(timeout=5)


def run_one_job(
    sessions: sessionmaker[Session],
    handlers: Mapping[JobKind, Handler],
    worker: str,
    settings: RunnerSettings,
    stopping: threading.Event,
    log: Log,
    before_claim: Callable[[Session], object] | None = None,
) -> bool:
    """Requeue stale jobs, then claim and run at most one job of the handled kinds. True when a job was run.
    `before_claim` runs in the claiming transaction (the web side schedules its Label Studio syncs there)."""
    with session_scope(sessions) as session:
        requeued = requeue_stale_jobs(session, timedelta(seconds=settings.heartbeat_timeout_seconds))
        if requeued:
            log(f"requeued {requeued} job(s) whose worker stopped sending heartbeats")
        if before_claim is not None:
            before_claim(session)
        job = claim_next_job(session, worker, kinds=list(handlers))
        if job is None:
            return False
        session.expunge(job)
    log(f"job {job.id}: {job.kind.value} for project {job.project_id} (attempt {job.attempts})")
    try:
        with _Heartbeats(sessions, job.id, worker, settings, stopping) as beats:
            message = handlers[job.kind](job, beats.report)
    except JobInterrupted as reason:
        with session_scope(sessions) as session:
            fail_versions_of_job(session, job.id, "its job stopped")
            release_job(session, job.id, worker)  # queued again for the next worker (unless cancelled)
        log(f"job {job.id}: stopped ({reason})")
        return True
    except Exception as error:
        detail = str(error) if isinstance(error, JobError) else "".join(traceback.format_exception(error))
        with session_scope(sessions) as session:
            fail_versions_of_job(session, job.id, "its job failed")  # a retry starts a new version
            status = fail_job(session, job.id, worker, detail)  # queued again while attempts remain
        log(f"job {job.id}: failed ({type(error).__name__}: {error}); now {status}")
        return True
    with session_scope(sessions) as session:
        finish_job(session, job.id, worker, message)
    log(f"job {job.id}: {message}")
    return True


def run_job_loop(
    sessions: sessionmaker[Session],
    handlers: Mapping[JobKind, Handler],
    worker: str,
    settings: RunnerSettings,
    stopping: threading.Event,
    *,
    once: bool = False,
    log: Log = lambda message: print(message, flush=True),
    before_claim: Callable[[Session], object] | None = None,
) -> None:
    """Serve jobs until `stopping` is set (or, with once=True, one pass: one job or none waiting)."""
    while not stopping.is_set():
        ran = run_one_job(sessions, handlers, worker, settings, stopping, log, before_claim)
        if once:
            return
        if not ran:
            stopping.wait(settings.poll_seconds)
