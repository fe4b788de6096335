"""The worker loop: requeue stale jobs, claim one, run it with a heartbeat thread, record the outcome.

SIGTERM (or Ctrl-C) stops the worker: a job in progress is given back to the queue at its next progress
report, so another worker can take it; SIGKILL leaves it running until its heartbeat goes stale, then any
worker requeues it.
"""

import contextlib
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from db.engine import session_scope
from db.jobs import claim_next_job, fail_job, finish_job, heartbeat, release_job, requeue_stale_jobs
from db.models import Job, JobKind
from trainer.config import WorkerSettings
from trainer.retrain import NothingToTrain, run_retrain, run_score

HANDLED_KINDS = (JobKind.RETRAIN, JobKind.SCORE)
Log = Callable[[str], None]


class JobInterrupted(Exception):
    """The job was cancelled or taken away, or the worker is stopping: stop working on it."""


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class JobRunner:
    """Runs one claimed job: progress reports double as heartbeats, and a thread keeps beating between them."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        job_id: int,
        worker: str,
        settings: WorkerSettings,
        stopping: threading.Event,
    ) -> None:
        self.sessions, self.job_id, self.worker = sessions, job_id, worker
        self.settings, self.stopping = settings, stopping
        self.lost = threading.Event()
        self._lock = threading.Lock()

    def beat(self, progress: float | None = None, message: str | None = None) -> None:
        with self._lock, session_scope(self.sessions) as session:
            if not heartbeat(session, self.job_id, self.worker, progress=progress, message=message):
                self.lost.set()

    def report(self, progress: float, message: str) -> None:
        """Progress for the app's progress bar; raises JobInterrupted when the job must stop."""
        if self.stopping.is_set():
            raise JobInterrupted("the worker is stopping")
        self.beat(progress, message)
        if self.lost.is_set():
            raise JobInterrupted("the job was cancelled or given to another worker")

    def _beat_forever(self, done: threading.Event) -> None:
        while not done.wait(self.settings.heartbeat_seconds):
            # A missed beat is retried; a dead database shows up in the job itself.
            with contextlib.suppress(Exception):
                self.beat()

    def run(self, job: Job, log: Log) -> None:
        done = threading.Event()
        beater = threading.Thread(target=self._beat_forever, args=(done,), daemon=True)
        beater.start()
        try:
            self._dispatch(job, log)
        finally:
            done.set()
            beater.join(timeout=5)

    def _dispatch(self, job: Job, log: Log) -> None:
        try:
            version = self._run(job)
        except NothingToTrain as reason:
            message = f"nothing to do: {reason}"
        else:
            message = f"model version {version} ready"
        with session_scope(self.sessions) as session:
            finish_job(session, self.job_id, self.worker, message)
        log(f"job {self.job_id}: {message}")

    def _run(self, job: Job) -> int:
        if job.kind == JobKind.RETRAIN:
            if job.project_id is None:
                raise ValueError("a retrain job needs a project")
            from_scratch = bool(job.payload.get("from_scratch"))
            return run_retrain(
                self.sessions,
                self.settings,
                job.project_id,
                self.report,
                from_scratch=from_scratch,
                job_id=job.id,
            )
        if job.kind == JobKind.SCORE:
            return run_score(self.sessions, self.settings, int(job.payload["model_version_id"]), self.report)
        raise ValueError(f"this worker does not handle {job.kind} jobs")


def run_once(
    sessions: sessionmaker[Session],
    settings: WorkerSettings,
    worker: str,
    stopping: threading.Event,
    log: Log,
) -> bool:
    """Requeue stale jobs, then claim and run at most one job. True when a job was run."""
    with session_scope(sessions) as session:
        requeued = requeue_stale_jobs(session, timedelta(seconds=settings.heartbeat_timeout_seconds))
        if requeued:
            log(f"requeued {requeued} job(s) whose worker stopped")
    with session_scope(sessions) as session:
        job = claim_next_job(session, worker, kinds=HANDLED_KINDS)
        if job is None:
            return False
        session.expunge(job)
    log(f"job {job.id}: {job.kind.value} for project {job.project_id} (attempt {job.attempts})")
    runner = JobRunner(sessions, job.id, worker, settings, stopping)
    try:
        runner.run(job, log)
    except JobInterrupted as reason:
        with session_scope(sessions) as session:
            release_job(session, job.id, worker)
        log(f"job {job.id}: stopped ({reason})")
    except Exception as error:
        with session_scope(sessions) as session:
            status = fail_job(session, job.id, worker, "".join(traceback.format_exception(error)))
        log(f"job {job.id}: failed ({type(error).__name__}: {error}); now {status}")
    return True


def run_worker(
    sessions: sessionmaker[Session],
    settings: WorkerSettings,
    *,
    once: bool = False,
    log: Log = lambda message: print(message, flush=True),
) -> None:
    """Serve jobs until SIGTERM/Ctrl-C (or, with once=True, until one job ran or none was waiting)."""
    stopping = threading.Event()
    previous: dict[int, Any] = {}

    def stop(signum: int, _frame: Any) -> None:
        log(f"signal {signum}: finishing the current step, then giving the job back")
        stopping.set()

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, stop)
    worker = worker_id()
    log(f"worker {worker} waiting for jobs")
    try:
        while not stopping.is_set():
            ran = run_once(sessions, settings, worker, stopping, log)
            if once:
                return
            if not ran:
                stopping.wait(settings.poll_seconds)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        time.sleep(0)
