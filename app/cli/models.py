"""Model versions: retrain, follow a job, list versions, export and import adapters."""

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from annotator.accounts.access import OPERATOR
from annotator.corpus.projects import get_project
from annotator.errors import LingualoopError
from annotator.reports.stopping import stopping_signals
from annotator.retraining.requests import (
    current_choice,
    export_adapter,
    get_job,
    import_adapter,
    list_versions,
    pin_version,
    request_fast_retrain,
    request_retrain,
    set_retrain_backend,
)
from app.cli.common import ProjectOption, _num, _progress, cli, console, friendly_errors, model_cli, state
from core.languages import language_name
from core.metrics import Scores, VersionMetrics
from db.models import JobStatus
from db.payloads import RetrainPayload


@model_cli.command("export")
@friendly_errors
def model_export(
    ctx: typer.Context,
    destination: Annotated[Path, typer.Argument(help="New folder for the adapter.")],
    project: ProjectOption = None,
    version: Annotated[int | None, typer.Option(help="Model version (default: the current one).")] = None,
) -> None:
    """Copy a version's LoRA adapter folder (with its metrics and lineage)."""
    with state(ctx).transaction(read_only=True) as session:
        folder = export_adapter(
            session,
            get_project(session, project),
            destination,
            state(ctx).settings.data_dir,
            version,
            by=OPERATOR,
        )
    console.print(f"Adapter written to {folder}.")


@model_cli.command("pin")
@friendly_errors
def model_pin(
    ctx: typer.Context,
    version: Annotated[int, typer.Argument(help="A ready model version.")],
    project: ProjectOption = None,
) -> None:
    """Keep a version current whatever newer versions score (until `model unpin`)."""
    with state(ctx).transaction() as session:
        current = pin_version(session, get_project(session, project), version, by=OPERATOR)
    console.print(f"Version {version} is pinned and current." if current else "No ready version.")


@model_cli.command("unpin")
@friendly_errors
def model_unpin(ctx: typer.Context, project: ProjectOption = None) -> None:
    """Let lingualoop choose the current version again: the newest evaluated version, unless an older one is
    better beyond its 95% interval."""
    with state(ctx).transaction() as session:
        found = get_project(session, project)
        current = pin_version(session, found, None, by=OPERATOR)
        choice = current_choice(session, found)
        why = choice.reason if choice else ""
    console.print(
        f"Nothing pinned. Version {current.id} is current: {why}." if current else "No ready version."
    )


@model_cli.command("import")
@friendly_errors
def model_import(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="A LoRA adapter folder (adapter_config.json inside).")],
    project: ProjectOption = None,
    base_model: Annotated[
        str | None, typer.Option(help="Base model, if the adapter does not name it.")
    ] = None,
) -> None:
    """Start from an existing adapter: recorded as a version, then evaluated and scored by the worker."""
    with state(ctx).transaction(read_only=True) as session:
        project_id = get_project(session, project).id
    # The folder is copied before import_adapter's own short write transaction, never inside one.
    version, job = import_adapter(
        state(ctx).sessions(), project_id, folder, state(ctx).settings.data_dir, base_model, by=OPERATOR
    )
    console.print(
        f"Recorded model version {version.id} (base {version.base_model}); job {job.id} will "
        "evaluate it and score the pool when a worker runs."
    )


@cli.command()
@friendly_errors
def retrain(
    ctx: typer.Context,
    project: ProjectOption = None,
    from_scratch: Annotated[
        bool,
        typer.Option(
            help="Train from the base model on every label instead of resuming the previous version (a new LoRA "
            "adapter, or the encoder's members from e5)."
        ),
    ] = False,
    wait: Annotated[bool, typer.Option(help="Follow the job's progress until it ends.")] = False,
    fast: Annotated[
        bool, typer.Option(help="Retrain the fast model (embeddings + logistic regression, seconds) instead.")
    ] = False,
    backend: Annotated[
        str | None,
        typer.Option(
            help="The worker's model to train: auto (the worker chooses: the encoder on a CPU, LoRA on a GPU), "
            "lora or encoder (multilingual-e5-small fine-tuned end to end). Default: the project's choice."
        ),
    ] = None,
    make_default: Annotated[
        bool, typer.Option(help="Make --backend the project's choice for later retrains (and the app's).")
    ] = False,
) -> None:
    """Ask the worker to retrain the project's model on the labels (its choice: auto unless a researcher chose LoRA
    or the encoder; with --fast, the fast model)."""
    with state(ctx).transaction() as session:
        target = get_project(session, project)
        if make_default:
            if backend is None:
                raise LingualoopError("--make-default needs --backend auto, lora or encoder.")
            set_retrain_backend(session, target, backend, by=OPERATOR)
        job = (
            request_fast_retrain(session, target, by=OPERATOR)
            if fast
            else request_retrain(session, target, from_scratch=from_scratch, backend=backend, by=OPERATOR)
        )
        job_id, chosen = job.id, "fast" if fast else RetrainPayload.of(job).backend.value
    console.print(f"Retrain queued as job {job_id} ({chosen}). A worker (`lingualoop worker`) picks it up.")
    if wait:
        _follow_job(ctx, job_id)


def _follow_job(ctx: typer.Context, job_id: int) -> None:
    finished = {JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED}
    with _progress() as bar:
        task = bar.add_task("waiting for a worker", total=1.0)
        while True:
            with state(ctx).transaction(read_only=True) as session:
                job = get_job(session, job_id)
                status, progress, message, error = job.status, job.progress, job.progress_message, job.error
            bar.update(task, completed=progress, description=(message or status.value)[:60])
            if status in finished:
                break
            time.sleep(1.0)
    if status == JobStatus.DONE:
        console.print(f"Job {job_id} done: {message}")
    else:
        raise LingualoopError(f"Job {job_id} {status.value}: {(error or message or '').strip()[-2000:]}")


@cli.command()
@friendly_errors
def models(
    ctx: typer.Context,
    project: ProjectOption = None,
) -> None:
    """Model versions with their per-language evaluation."""
    with state(ctx).transaction(read_only=True) as session:
        target = get_project(session, project)
        versions = list_versions(session, target)
        if not versions:
            console.print("No model versions yet: label some posts, then `lingualoop retrain`.")
            return
        table = Table(
            "version",
            "parent",
            "status",
            "current",
            "backend",
            "base model",
            "macro-F1 [95% CI]",
            "topic",
            "stance",
            "n",
            "ECE (T)",
            title=f"{target.name}: model versions",
        )
        for v in versions:
            metrics = VersionMetrics.of(v.metrics)
            overall = metrics.overall
            table.add_row(
                str(v.id),
                str(v.parent_id or ""),
                v.status.value,
                ("yes" if v.is_current else "") + (" (pinned)" if v.pinned else ""),
                v.backend,
                v.base_model,
                _with_interval(overall),
                _num(overall.topic_f1 if overall else None),
                _num(overall.stance_f1 if overall else None),
                str(overall.n) if overall else "",
                f"{metrics.ece:.3f} ({metrics.temperature:.2f})" if metrics.ece is not None else "",
            )
        console.print(table)
        choice = current_choice(session, target)
        if choice is not None:
            console.print(f"Version {choice.version.id} is current: {choice.reason}.", soft_wrap=True)
        current = next((v for v in versions if v.is_current), None)
        current_metrics = VersionMetrics.of(current.metrics if current is not None else None)
        per_language = current_metrics.languages
        if current is not None and per_language:
            per = Table(
                "language",
                "n",
                "macro-F1 [95% CI]",
                "topic",
                "stance",
                "ECE",
                title=f"version {current.id} per language",
            )
            for code, m in per_language.items():
                per.add_row(
                    f"{code} ({language_name(code)})",
                    str(m.n),
                    _with_interval(m),
                    _num(m.topic_f1),
                    _num(m.stance_f1),
                    _num(current_metrics.ece_of(code)),
                )
            console.print(per)
        signals = stopping_signals(session, target)
        if any(signal.kappas for signal in signals.values()):
            stop = Table(
                "language",
                "kappa between successive versions",
                "signal",
                title="Stopping signal (mean kappa of the last 3 >= 0.99)",
            )
            for code, signal in signals.items():
                stop.add_row(
                    f"{code} ({language_name(code)})",
                    ", ".join(f"{k:.2f}" for k in signal.kappas[-5:]),
                    signal.message,
                )
            console.print(stop)


def _with_interval(scores: Scores | None) -> str:
    if scores is None or scores.macro_f1 is None:
        return "-"
    if scores.interval is None:
        return f"{scores.macro_f1:.3f}"
    return f"{scores.macro_f1:.3f} [{scores.interval[0]:.3f}, {scores.interval[1]:.3f}]"
