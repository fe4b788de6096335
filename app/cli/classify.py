"""`lingualoop classify`: apply a ready model version to corpus files outside the project. The project and the
version are checked here; the scoring runs in the worker's own entry point (`python -m trainer classify`, on Ray),
so this process never imports torch or Ray."""

from pathlib import Path
from typing import Annotated

import typer

from annotator.corpus.projects import get_project
from annotator.errors import LingualoopError
from annotator.retraining.requests import get_version
from app.cli.common import ProjectOption, cli, friendly_errors, state
from app.cli.serve import _run_worker_process
from db.models import ModelStatus


@cli.command()
@friendly_errors
def classify(
    ctx: typer.Context,
    inputs: Annotated[
        list[Path], typer.Argument(help="CSV, TSV, JSONL or Parquet files, or folders of them.")
    ],
    out: Annotated[Path, typer.Option(help="New folder for the Parquet shards and manifest.json.")],
    project: ProjectOption = None,
    version: Annotated[
        int | None, typer.Option(help="A ready model version (default: the current one).")
    ] = None,
    text_col: Annotated[str | None, typer.Option(help="Column with the post text (default: text).")] = None,
    id_col: Annotated[
        str | None, typer.Option(help="Column with the post id (default: id; else FILE:LINE).")
    ] = None,
    lang_col: Annotated[
        str | None,
        typer.Option(help="Column with the language (default: lang or language; empty cells are detected)."),
    ] = None,
    keep: Annotated[
        str | None, typer.Option(help="Columns passed through to the output, comma separated.")
    ] = None,
    unit_rows: Annotated[int, typer.Option(help="Posts per unit of work and output shard.")] = 2000,
    ray_address: Annotated[
        str | None,
        typer.Option(
            envvar="RAY_ADDRESS", help="An existing Ray cluster (default: a local Ray in this process)."
        ),
    ] = None,
    actors: Annotated[
        int | None,
        typer.Option(help="Scoring actors (default: one per GPU, else per --cpus-per-actor CPUs)."),
    ] = None,
    cpus_per_actor: Annotated[float, typer.Option(help="CPU threads per scoring actor.")] = 2.0,
    batch_size: Annotated[
        int | None, typer.Option(help="Posts per forward pass of a LoRA version (default 16; more on a GPU).")
    ] = None,
) -> None:
    """Classify an archive with a ready model version: Parquet shards (id, language, p_pro ... p_unrelated,
    label, confidence, model_version, kept columns) and a manifest in --out. Rerun the same command after an
    interruption: it finishes what is missing and writes no row twice."""
    with state(ctx).transaction(read_only=True) as session:
        chosen = get_version(session, get_project(session, project), version)
        if chosen.status != ModelStatus.READY:
            raise LingualoopError(
                f"Model version {chosen.id} is {chosen.status}, not ready: classify with a ready version."
            )
        version_id = chosen.id
    args = [*map(str, inputs), "--version-id", str(version_id), "--out", str(out)]
    options = {
        "--text-col": text_col,
        "--id-col": id_col,
        "--lang-col": lang_col,
        "--keep": keep,
        "--ray-address": ray_address,
        "--actors": actors,
        "--batch-size": batch_size,
    }
    args += [item for name, value in options.items() if value is not None for item in (name, str(value))]
    args += ["--unit-rows", str(unit_rows), "--cpus-per-actor", str(cpus_per_actor)]
    _run_worker_process(ctx, ["classify", *args])
