"""Model versions from the web side: ask for a retrain, follow its job, list versions, export and import
adapters. The worker does the work; the database carries the request."""

import json
import shutil
import uuid
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from annotator.accounts.access import OPERATOR, RESEARCHERS, Actor, actor_name, require_role
from annotator.errors import LingualoopError, NotFoundError
from annotator.sampling.settings import SamplingSettings
from core.progress import duration
from db.engine import session_scope
from db.jobs import cancel_job, dedupe_key, enqueue, queued_with_key
from db.models import (
    Annotation,
    AnnotationKind,
    Backend,
    Item,
    Job,
    JobKind,
    JobStatus,
    ModelStatus,
    ModelVersion,
    Project,
    RetrainChoice,
    Split,
    as_utc,
)
from db.payloads import FastRetrainPayload, RetrainPayload, ScorePayload, requested_by
from db.snapshots import TrainingSnapshot, snapshot_json
from db.versions import (
    CurrentChoice,
    VersionNotReady,
    adapter_folder,
    choose_current,
    current_version,
    latest_ready_version,
    paired_comparer,
    ready_versions,
    require_ready,
    select_current,
    stored_folder,
    version_folder,
)

WORKER_BACKENDS = {
    RetrainChoice.AUTO: "Automatic: the encoder on a CPU worker, the study's LoRA model on a GPU (recommended)",
    RetrainChoice.LORA: "LoRA (the study's model: Gemma-3-270M on CPU, Llama-3.2-3B on a GPU)",
    RetrainChoice.ENCODER: "Encoder (multilingual-e5-small fine-tuned end to end)",
}
"""What a Retrain can train (the worker's models, or the worker's choice between them), as the Retrain page names
them. "auto" is resolved by the worker that takes the job (trainer/config.py: resolve_backend): only it knows
whether it has a GPU."""


def worker_backend(name: str) -> RetrainChoice:
    """A Retrain choice by name, or a clear error."""
    if name not in {b.value for b in WORKER_BACKENDS}:
        names = ", ".join(b.value for b in WORKER_BACKENDS)
        raise LingualoopError(f"Unknown model '{name}': use one of {names}.")
    return RetrainChoice(name)


def set_retrain_backend(session: Session, project: Project, backend: str, *, by: Actor) -> None:
    """What the project's Retrain trains from now on."""
    require_role(by, RESEARCHERS, "choose the model a retrain trains")
    project.retrain_backend = worker_backend(backend).value
    session.flush()


def request_retrain(
    session: Session,
    project: Project,
    *,
    from_scratch: bool = False,
    backend: str | None = None,
    by: Actor,
) -> Job:
    """Queue a retrain of one of the worker's models (the project's choice unless `backend` is given); a retrain
    of that model already queued is returned instead (asking for a retrain from scratch turns the queued one into
    a retrain from scratch). `by` is the signed-in user, or OPERATOR for the command line."""
    require_role(by, RESEARCHERS, "retrain the model")
    chosen = worker_backend(backend or project.retrain_backend)
    key = dedupe_key(JobKind.RETRAIN, project.id) + (
        "" if chosen == RetrainChoice.LORA else f":{chosen.value}"
    )
    job = enqueue(
        session,
        JobKind.RETRAIN,
        project_id=project.id,
        payload=RetrainPayload(from_scratch=from_scratch, requested_by=actor_name(by), backend=chosen),
        dedupe_key=key,
    )
    queued = RetrainPayload.of(job)
    if from_scratch and not queued.from_scratch:
        job.payload = replace(queued, from_scratch=True).to_json()
        session.flush()
    return job


def get_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        raise NotFoundError(f"No job {job_id}.")
    return job


def list_versions(session: Session, project: Project) -> list[ModelVersion]:
    return list(
        session.scalars(
            select(ModelVersion).where(ModelVersion.project_id == project.id).order_by(ModelVersion.id)
        )
    )


def get_version(session: Session, project: Project, version_id: int | None = None) -> ModelVersion:
    """The given version of the project, or its current one."""
    version = (
        session.scalar(
            select(ModelVersion).where(ModelVersion.project_id == project.id, ModelVersion.id == version_id)
        )
        if version_id
        else current_version(session, project.id)
    )
    if version is None:
        what = f"version {version_id}" if version_id else "current model version (press Retrain first)"
        raise NotFoundError(f"Project '{project.name}' has no {what}.")
    return version


def export_adapter(
    session: Session,
    project: Project,
    destination: Path,
    data_dir: Path,
    version_id: int | None = None,
    *,
    by: Actor,
) -> Path:
    """Copy a version's adapter folder, with its metrics and lineage, for a replication package."""
    require_role(by, RESEARCHERS, "export model adapters")
    version = get_version(session, project, version_id)
    if version.backend == Backend.ENSEMBLE:
        members = ", ".join(str(i) for i in TrainingSnapshot.of(version.training_snapshot).members)
        raise LingualoopError(
            f"Version {version.id} is an ensemble with no files of its own: export its members ({members}) "
            "with --version, one at a time."
        )
    folder = version_folder(data_dir, version)
    if folder is None or not folder.is_dir():
        raise LingualoopError(f"Version {version.id} has no adapter folder on this machine.")
    if destination.exists():
        raise LingualoopError(f"{destination} already exists: choose a new folder.")
    shutil.copytree(folder, destination)
    card = {
        "project": project.name,
        "model_version": version.id,
        "parent": version.parent_id,
        "backend": version.backend,
        "base_model": version.base_model,
        "metrics": version.metrics,
        "trained_on": TrainingSnapshot.of(version.training_snapshot).without_labels(),
    }
    (destination / "lingualoop-version.json").write_text(json.dumps(card, indent=2), encoding="utf-8")
    return destination


def import_adapter(
    sessions: sessionmaker[Session],
    project_id: int,
    folder: Path,
    data_dir: Path,
    base_model: str | None = None,
    *,
    by: Actor,
) -> tuple[ModelVersion, Job]:
    """Record an existing LoRA adapter folder (one of ours, or a published one) as a new version of the
    project, and queue a job that evaluates it and scores the pool; it becomes usable when that is done.

    The folder is copied with no transaction open, into a staging folder beside the versions' folders; one short
    transaction then records the version, moves the copy into place (a rename, not a copy) and queues the job.
    A failure removes what it placed; a crash leaves at most a `.import-*` staging folder, which nothing reads."""
    require_role(by, RESEARCHERS, "import model adapters")
    base, lineage = _adapter_origin(folder, base_model)
    staging = _staging_folder(data_dir, project_id)
    placed: Path | None = None
    try:
        shutil.copytree(folder, staging)
        with session_scope(sessions) as session:
            project = session.get(Project, project_id)
            if project is None:
                raise NotFoundError(f"Project {project_id} no longer exists.")
            version = ModelVersion(
                project_id=project.id,
                backend=Backend.LORA,
                base_model=base,
                status=ModelStatus.SCORING,
                training_snapshot=snapshot_json(lineage=lineage),
            )
            session.add(version)
            session.flush()
            placed = _move_into_place(staging, adapter_folder(data_dir, project.id, version.id))
            version.adapter_path = stored_folder(project.id, version.id)
            job = enqueue(session, JobKind.SCORE, project_id=project.id, payload=ScorePayload(version.id))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if placed is not None:  # moved, but the version that owns it was never committed
            shutil.rmtree(placed, ignore_errors=True)
        raise
    return version, job


def _adapter_origin(folder: Path, base_model: str | None) -> tuple[str, dict[str, Any]]:
    """The adapter's base model and its lineage (where it came from, and its own version card if it has one)."""
    config_path = folder / "adapter_config.json"
    if not config_path.is_file():
        raise LingualoopError(f"{folder} is not a LoRA adapter folder (no adapter_config.json).")
    try:
        config: dict[str, Any] = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise LingualoopError(f"{config_path} is not valid JSON: {error}") from None
    base = base_model or config.get("base_model_name_or_path")
    if not base:
        raise LingualoopError("The adapter does not name its base model: pass --base-model.")
    lineage: dict[str, Any] = {"imported_from": str(folder.resolve())}
    record = folder / "lingualoop-version.json"
    if record.is_file():
        lineage["origin"] = json.loads(record.read_text(encoding="utf-8"))
    return str(base), lineage


def _staging_folder(data_dir: Path, project_id: int) -> Path:
    """A fresh folder name beside the project's version folders: on the same file system, so moving it into
    place is a rename."""
    return adapter_folder(data_dir, project_id, 0).with_name(f".import-{uuid.uuid4().hex}")


def _move_into_place(staging: Path, target: Path) -> Path:
    """Rename `staging` to `target`. A folder already there belongs to no version (this version's id is new): it
    is what a crash between an earlier move and its commit left, so it goes."""
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


MODEL_JOBS = (JobKind.RETRAIN, JobKind.SCORE, JobKind.FAST_RETRAIN)


def _model_jobs(project: Project) -> Select[Job]:
    return select(Job).where(Job.project_id == project.id, Job.kind.in_(MODEL_JOBS))


def jobs_finished_since(session: Session, project: Project, since: datetime, by: Actor) -> list[Job]:
    """The project's model jobs that ended (done, failed or cancelled) after `since`, oldest first: the
    notices a researcher gets on whatever page they are."""
    require_role(by, RESEARCHERS, "see retrain jobs")
    ended = _model_jobs(project).where(Job.finished_at.is_not(None), Job.finished_at > since)
    return list(session.scalars(ended.order_by(Job.finished_at)))


def recent_jobs(session: Session, project: Project, by: Actor, limit: int = 10) -> list[Job]:
    """The project's model jobs, newest first (for the retrain page's progress bars)."""
    require_role(by, RESEARCHERS, "see retrain jobs")
    return list(session.scalars(_model_jobs(project).order_by(Job.id.desc()).limit(limit)))


def cancel(session: Session, project: Project, job_id: int, by: Actor) -> bool:
    """Cancel a queued or running job of the project; a running one stops at its next progress report and
    leaves the current version as it was."""
    require_role(by, RESEARCHERS, "cancel a retrain")
    job = session.get(Job, job_id)
    if job is None or job.project_id != project.id:
        raise NotFoundError(f"Job {job_id} is not a job of project '{project.name}'.")
    return cancel_job(session, job_id)


def retrain_in_progress(session: Session, project: Project) -> bool:
    """Whether a retrain (LoRA or fast) of the project is queued or running: the annotate page's empty state says
    so, since new posts come once it is done."""
    return (
        session.scalar(
            select(Job.id)
            .where(
                Job.project_id == project.id,
                Job.kind.in_([JobKind.RETRAIN, JobKind.FAST_RETRAIN]),
                Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]),
            )
            .limit(1)
        )
        is not None
    )


def current_choice(session: Session, project: Project) -> CurrentChoice | None:
    """The version that is (or would be made) current, and why."""
    return choose_current(ready_versions(session, project.id), paired_comparer(session, project.id))


def pin_version(
    session: Session, project: Project, version_id: int | None, *, by: Actor
) -> ModelVersion | None:
    """Pin a ready version as current (whatever newer versions score), or unpin with None: the noise-aware rule
    (db.versions.choose_current) then chooses again. Returns the current version."""
    require_role(by, RESEARCHERS, "pin a model version")
    if version_id is not None:
        try:
            require_ready(get_version(session, project, version_id))
        except VersionNotReady as error:
            raise LingualoopError(f"{error}: only a ready version can be pinned.") from None
    session.execute(
        update(ModelVersion)
        .where(ModelVersion.project_id == project.id)
        .values(pinned=ModelVersion.id == version_id)
    )
    session.flush()
    return select_current(session, project.id)


def job_timing(job: Job, now: datetime) -> str:
    """Who asked and when, when it started, how long it has run and, while it runs, about how long is left
    (from the progress so far: a rough guide, since steps differ in speed)."""
    parts = [f"asked by {requested_by(job)} at {job.created_at:%H:%M}"]
    if job.started_at is not None:
        end = as_utc(job.finished_at) if job.finished_at else as_utc(now)
        elapsed = (end - as_utc(job.started_at)).total_seconds()
        parts.append(f"started {job.started_at:%H:%M}")
        parts.append(f"{'took' if job.finished_at else 'running for'} {duration(elapsed)}")
        if job.finished_at is None and job.status == JobStatus.RUNNING and 0.05 <= job.progress < 1:
            parts.append(f"about {duration(elapsed * (1 - job.progress) / job.progress)} left")
    return " · ".join(parts)


def request_fast_retrain(session: Session, project: Project, by: Actor, *, reason: str | None = None) -> Job:
    """Queue a fast-model retrain (one queued per project); `lingualoop worker` runs it in seconds. The job
    records who asked (or `reason`, for lingualoop's own follow-up)."""
    require_role(by, RESEARCHERS, "retrain the model")
    return enqueue(
        session,
        JobKind.FAST_RETRAIN,
        project_id=project.id,
        payload=FastRetrainPayload(requested_by=reason or actor_name(by)),
        dedupe_key=dedupe_key(JobKind.FAST_RETRAIN, project.id),
    )


def labels_since_fast_version(session: Session, project: Project) -> int:
    """Pool labels given after the newest fast version was trained (all of them before the first)."""
    latest = latest_ready_version(session, project.id, Backend.FAST)
    query = (
        select(func.count())
        .select_from(Annotation)
        .join(Item, Item.id == Annotation.item_id)
        .where(
            Item.project_id == project.id, Item.split == Split.POOL, Annotation.kind == AnnotationKind.LABEL
        )
    )
    if latest is not None:
        query = query.where(Annotation.updated_at > latest.created_at)
    return int(session.scalar(query) or 0)


def maybe_request_fast_retrain(session: Session, project: Project) -> Job | None:
    """Queue a fast retrain once `fast_every` new labels have come in since the last fast version (0 turns
    the automatic retrain off)."""
    every = SamplingSettings.of(project).fast_every
    if every <= 0:
        return None
    queued = queued_with_key(session, dedupe_key(JobKind.FAST_RETRAIN, project.id))
    if queued is not None:  # one is waiting already: no need to count labels on every answer
        return queued
    if labels_since_fast_version(session, project) < every:
        return None
    # lingualoop's own follow-up to new labels
    return request_fast_retrain(session, project, OPERATOR, reason=f"automatic, after {every} new labels")
