"""`lingualoop classify`: apply a ready model version to corpus files outside the project. The project and the
version are checked here; the scoring runs in the worker's own entry point (`python -m trainer classify`, on Ray),
so this process never imports torch or Ray."""

from typing import Annotated

import typer

from annotator.corpus.projects import get_project
from annotator.errors import LingualoopError
from annotator.retraining.requests import get_version
from app.cli.common import WORKER_SIDE, ProjectOption, cli, extra_args, friendly_errors, state
from app.cli.serve import _run_worker_process
from db.versions import VersionNotReady, require_ready


@cli.command(**WORKER_SIDE)
@friendly_errors
def classify(
    ctx: typer.Context,
    project: ProjectOption = None,
    version: Annotated[
        int | None, typer.Option(help="A ready model version (default: the current one).")
    ] = None,
) -> None:
    """Classify an archive (INPUTS: CSV, TSV, JSONL or Parquet files, or folders of them) with a ready model
    version: Parquet shards (id, language, p_pro ... p_unrelated, label, confidence, model_version, kept columns)
    and a manifest in --out. Rerun the same command after an interruption: it finishes what is missing and writes
    no row twice. The inputs and the options below are handed to the model worker untouched."""
    handed_on = extra_args(ctx)
    with state(ctx).transaction(read_only=True) as session:
        try:
            version_id = require_ready(get_version(session, get_project(session, project), version)).id
        except VersionNotReady as error:
            raise LingualoopError(f"{error}: classify with a ready version.") from None
    _run_worker_process(ctx, ["classify", *handed_on, "--version-id", str(version_id)])
