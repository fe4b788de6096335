"""The web side's jobs, run inside `lingualoop worker` beside the model worker process (which takes retrain and
score jobs): fast_retrain (the fast model, no torch) and labelstudio_sync, served by the one job runner
(db/runner.py) with the same heartbeat timeout as the model worker. A failed sync is retried (three attempts)."""

import threading
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from annotator.accounts.access import OPERATOR, RESEARCHERS, Actor, require_role
from annotator.errors import LingualoopError
from annotator.labelstudio.sync import sync
from annotator.retraining.fastmodel import train_fast_version
from db.ensemble import refresh_ensemble
from db.jobs import dedupe_key, enqueue
from db.models import Job, JobKind, LabelStudioLink, Project, utcnow
from db.payloads import LabelStudioSyncPayload
from db.runner import Handler, JobError, Log, Report, RunnerSettings, run_job_loop, run_one_job, worker_id
from db.versions import standing

SYNC_EVERY = timedelta(minutes=1)


def request_sync(session: Session, project: Project, by: Actor) -> Job:
    """Queue a Label Studio sync of the project now (one queued per project; the worker runs it)."""
    require_role(by, RESEARCHERS, "sync with Label Studio")
    return enqueue(
        session,
        JobKind.LABELSTUDIO_SYNC,
        project_id=project.id,
        payload=LabelStudioSyncPayload(),
        dedupe_key=dedupe_key(JobKind.LABELSTUDIO_SYNC, project.id),
    )


def schedule_syncs(session: Session, every: timedelta = SYNC_EVERY) -> int:
    """Queue a sync for every project connected to Label Studio whose last sync is older than `every`."""
    due = session.scalars(
        select(Project)
        .join(LabelStudioLink, LabelStudioLink.project_id == Project.id)
        .where((LabelStudioLink.last_sync_at.is_(None)) | (LabelStudioLink.last_sync_at < utcnow() - every))
    ).all()
    for project in due:
        request_sync(session, project, OPERATOR)  # the worker's own schedule
    return len(due)


def handlers(
    sessions: sessionmaker[Session], readers: sessionmaker[Session], data_dir: Path
) -> dict[JobKind, Handler]:
    """What the web side's loop does with each kind of job it takes (`readers`: read-only sessions)."""

    def fast_retrain(job: Job, report: Report) -> str:
        if job.project_id is None:
            raise ValueError("a fast_retrain job needs a project")
        try:
            version = train_fast_version(sessions, job.project_id, data_dir, report, job_id=job.id)
        except LingualoopError as reason:  # e.g. not enough labels yet: nothing to do, not a failure
            return f"nothing to do: {reason}"
        with readers() as session:
            note = standing(session, version)
        return f"fast model version {version} ready{note}" + refresh_ensemble(sessions, job.project_id)

    def labelstudio_sync(job: Job, report: Report) -> str:
        if job.project_id is None:
            raise ValueError("a labelstudio_sync job needs a project")
        report(0.1, "syncing with Label Studio")
        try:
            return sync(sessions, readers, job.project_id, data_dir, by=OPERATOR)
        except LingualoopError as error:  # the server did not answer, a wrong token...: retried
            raise JobError(str(error)) from error

    return {JobKind.FAST_RETRAIN: fast_retrain, JobKind.LABELSTUDIO_SYNC: labelstudio_sync}


def run_job(
    sessions: sessionmaker[Session],
    readers: sessionmaker[Session],
    data_dir: Path,
    stopping: threading.Event,
    log: Log,
    settings: RunnerSettings | None = None,
) -> bool:
    """Claim and run at most one of the web side's jobs (syncs that are due are queued first). True when a job
    was run."""
    return run_one_job(
        sessions,
        handlers(sessions, readers, data_dir),
        worker_id("web"),
        settings or RunnerSettings(),
        stopping,
        log,
        before_claim=schedule_syncs,
    )


def run_web_jobs(
    sessions: sessionmaker[Session],
    readers: sessionmaker[Session],
    data_dir: Path,
    stopping: threading.Event,
    settings: RunnerSettings,
    *,
    once: bool = False,
    log: Log = lambda message: print(message, flush=True),
) -> None:
    """Serve fast_retrain and labelstudio_sync jobs until `stopping` is set (or, with once=True, one pass)."""
    run_job_loop(
        sessions,
        handlers(sessions, readers, data_dir),
        worker_id("web"),
        settings,
        stopping,
        once=once,
        log=log,
        before_claim=schedule_syncs,
    )
