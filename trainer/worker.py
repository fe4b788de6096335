"""The worker process: retrain (LoRA or encoder; a project's "auto" is decided here, by trainer/config.py's
resolve_backend) and score jobs, served by the one job runner (db/runner.py).

SIGTERM (or Ctrl-C) stops the worker: a job in progress is given back to the queue at its next progress
report, so another worker can take it; SIGKILL leaves it running until its heartbeat goes stale, then any
worker requeues it.
"""

import signal
import threading
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.progress import Log
from db.ensemble import refresh_ensemble
from db.models import Backend, Job, JobKind, RetrainChoice
from db.payloads import RetrainPayload, ScorePayload
from db.runner import Handler, Report, run_job_loop, worker_id
from db.versions import standing
from trainer.config import WorkerSettings, resolve_backend
from trainer.encoder_retrain import run_encoder_retrain
from trainer.lora_retrain import run_retrain, run_score
from trainer.modeling import pick_device
from trainer.publish import NothingToTrain


def handlers(sessions: sessionmaker[Session], settings: WorkerSettings) -> dict[JobKind, Handler]:
    """What this process does with each kind of job it takes."""

    def retrain(job: Job, report: Report) -> str:
        if job.project_id is None:
            raise ValueError("a retrain job needs a project")
        payload = RetrainPayload.of(job)
        asked = payload.backend
        backend = resolve_backend(asked, settings.model, pick_device(settings.model).type == "cuda")
        chose = f" (auto: {backend.value} on this worker)" if asked == RetrainChoice.AUTO else ""
        try:
            run = run_encoder_retrain if backend == Backend.ENCODER else run_retrain
            version = run(
                sessions, settings, job.project_id, report, from_scratch=payload.from_scratch, job_id=job.id
            )
        except NothingToTrain as reason:
            return f"nothing to do: {reason}"
        return f"model version {version} ready{_standing(version)}{chose}" + refresh_ensemble(
            sessions, job.project_id
        )

    def score(job: Job, report: Report) -> str:
        version = run_score(sessions, settings, ScorePayload.of(job).model_version_id, report)
        ensemble = refresh_ensemble(sessions, job.project_id) if job.project_id is not None else ""
        return f"model version {version} ready{_standing(version)}" + ensemble

    def _standing(version_id: int) -> str:
        with sessions() as session:
            return standing(session, version_id)

    return {JobKind.RETRAIN: retrain, JobKind.SCORE: score}


def run_worker(
    sessions: sessionmaker[Session],
    settings: WorkerSettings,
    *,
    once: bool = False,
    log: Log = lambda message: print(message, flush=True),
    stopping: threading.Event | None = None,
) -> None:
    """Serve jobs until SIGTERM/Ctrl-C (or, with once=True, until one job ran or none was waiting). `stopping`, from
    `python -m trainer`, is set by a stop signal that came during start-up: then the worker serves no job."""
    stop_requested = threading.Event() if stopping is None else stopping
    previous: dict[signal.Signals, Any] = {}

    def stop(signum: int, _frame: Any) -> None:
        log(f"signal {signum}: finishing the current step, then giving the job back")
        stop_requested.set()

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, stop)
    try:
        if stop_requested.is_set():  # looked at once our handlers are in place: no signal falls in between
            log("stopped during start-up: no job served")
            return
        worker = worker_id("lora")
        log(f"worker {worker} waiting for jobs")
        run_job_loop(
            sessions,
            handlers(sessions, settings),
            worker,
            settings.runner,
            stop_requested,
            once=once,
            log=log,
        )
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
