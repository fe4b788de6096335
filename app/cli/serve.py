"""The app and the workers: demo, worker, experiment, model prepare."""

import json
import os
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from annotator.accounts.access import OPERATOR
from annotator.demo import create_demo_project
from annotator.errors import LingualoopError
from annotator.experiments.fast_protocol import run_fast_protocol
from annotator.jobloop import run_web_jobs
from app.cli.common import (
    WORKER_SIDE,
    CliState,
    _phase_bars,
    _progress,
    cli,
    console,
    friendly_errors,
    model_cli,
    state,
    typed_args,
)
from app.cli.corpus import status
from app.processes import StoppableChildren, child_env, streamlit_command, trainer_command
from core.crossval import PROTOCOLS, ensemble_report, protocol_folds, weighted_report
from core.pooling import RULES
from core.protocol_tables import compare_powers, compare_runs, format_protocol_table, parse_powers
from core.study import STUDY_TEST, STUDY_TRAIN, read_study_csv
from core.weighting import DEFAULT_LANGUAGE_POWER
from db.runner import RunnerSettings


@cli.command()
@friendly_errors
def demo(
    ctx: typer.Context,
    serve: Annotated[bool, typer.Option(help="Start the web app and a worker (Ctrl-C stops both).")] = True,
    port: Annotated[int, typer.Option(help="Port of the web app.")] = 8501,
) -> None:
    """Create the demo project from the bundled synthetic corpus (an admin and two annotators), then start the
    web app and a worker on it."""
    with state(ctx).transaction() as session, _progress() as bar:
        setup = create_demo_project(session, progress=_phase_bars(bar), by=OPERATOR)
    if setup.created:
        console.print(f"Created the demo project: {setup.report.posts_added if setup.report else 0} posts.")
        users = Table("user", "role", "password", title="Accounts (passwords are shown once)")
        for username, password in setup.passwords.items():
            users.add_row(username, "admin" if username == "admin" else "annotator", password)
        console.print(users)
    else:
        console.print(
            "The demo project already exists (passwords were shown when it was created; "
            "reset one with `lingualoop users passwd NAME`)."
        )
    console.print(f"Database: {state(ctx).settings.database_url}")
    ctx.invoke(status, ctx=ctx, project=setup.project.name)
    if serve:
        raise typer.Exit(serve_app(state(ctx), port))


def serve_app(cli_state: CliState, port: int) -> int:
    """Streamlit and the workers together, until Ctrl-C (or SIGTERM) stops all of them."""
    children = StoppableChildren(cli_state.settings)  # first: a Ctrl-C from here on reaches every child
    children.start(streamlit_command(port))
    console.print(
        f"\n[bold green]lingualoop is running:[/] open http://localhost:{port} and sign in with an account above.\n"
        "The worker retrains when you press Retrain (on a CPU the fine-tuned encoder, a minute or two on the demo; "
        "choose LoRA on the Retrain page for the study's model on the packaged Gemma-3-270M). "
        "Ctrl-C stops the app and the worker."
    )
    return run_workers(cli_state, [], RunnerSettings(), children=children)


def _run_worker_process(ctx: typer.Context, args: list[str]) -> None:
    """Hand over to the worker's own entry point (`python -m trainer`): this process never imports torch."""
    os.execve(sys.executable, trainer_command(args), child_env(state(ctx).settings))


@cli.command(**WORKER_SIDE)
def worker(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option(help="Run at most one job of each side, then exit.")] = False,
    heartbeat_timeout: Annotated[
        float, typer.Option(help="Seconds without a heartbeat after which any worker requeues a running job.")
    ] = RunnerSettings.heartbeat_timeout_seconds,
    heartbeat_every: Annotated[
        float, typer.Option(help="Seconds between heartbeats of a running job.")
    ] = RunnerSettings.heartbeat_seconds,
) -> None:
    """Run the worker until stopped (Ctrl-C gives a running job back): the model worker process for retrain and
    score jobs, and the web side's loop for fast_retrain and labelstudio_sync jobs, with one heartbeat policy.
    The options above are both sides'; the model worker's own ones below are handed to it untouched."""
    runner = RunnerSettings(heartbeat_seconds=heartbeat_every, heartbeat_timeout_seconds=heartbeat_timeout)
    raise typer.Exit(run_workers(state(ctx), typed_args(ctx), runner, once=once))


def run_workers(
    cli_state: CliState,
    worker_args: list[str],
    runner: RunnerSettings,
    *,
    once: bool = False,
    children: StoppableChildren | None = None,
) -> int:
    """The model worker (`python -m trainer worker`, given `worker_args`) as a child process and the web side's
    job loop in this one, with the same `runner` settings; returns the model worker's exit code. The `children`
    started before it (Streamlit, for the demo) are stopped with them."""
    children = StoppableChildren(cli_state.settings) if children is None else children
    extra = list(children.processes)
    lora = children.start(trainer_command(["worker", *worker_args]))
    web_jobs = threading.Thread(
        target=run_web_jobs,
        args=(
            cli_state.sessions(),
            cli_state.sessions(read_only=True),
            cli_state.settings.data_dir,
            children.stopping,
            runner,
        ),
        kwargs={"once": once},
        daemon=True,
    )
    web_jobs.start()
    code = lora.wait()
    if once:
        web_jobs.join()  # its one pass ends by itself
    children.stopping.set()
    for child in extra:
        if child.poll() is None:
            child.terminate()
            child.wait(timeout=30)
    web_jobs.join(timeout=60)  # a stop: a running job gives itself back at its next progress report
    return code


@cli.command(**WORKER_SIDE)
@friendly_errors
def experiment(
    ctx: typer.Context,
    train: Annotated[Path, typer.Option(help="Training file (the study's CSV layout).")] = STUDY_TRAIN,
    test: Annotated[Path, typer.Option(help="Test file.")] = STUDY_TEST,
    out: Annotated[Path | None, typer.Option(help="Write the results as JSON here.")] = None,
    protocol: Annotated[
        str,
        typer.Option(
            help="study: the study's table (train pools, test.csv). others: cross-validation over the ten other "
            "languages' posts of train.csv and test.csv, with 95% intervals per language. lolo: leave one "
            "language out (train on the rest, predict its posts), for each of the ten."
        ),
    ] = "study",
    backend: Annotated[
        str,
        typer.Option(
            help="lora (the worker's LoRA model), encoder (e5 fine-tuned end to end; others only) or fast (e5 "
            "embeddings + logistic regression; others only)."
        ),
    ] = "lora",
    folds: Annotated[int, typer.Option(help="Folds of the others protocol (lolo has one per language).")] = 5,
    leave_out: Annotated[
        str | None, typer.Option(help="lolo: the languages to leave out, comma separated (default: all ten).")
    ] = None,
    language_power: Annotated[
        str | None,
        typer.Option(
            help="Weight posts by their language's share to this power, negated (0 off, 0.5 inverse square "
            "root, 1 equal languages); comma separated to compare, e.g. 0,0.5."
        ),
    ] = None,
    average: Annotated[
        str | None,
        typer.Option(
            help="Others or lolo protocol: no training; the --out files of earlier runs, comma separated, are "
            "pooled post by post as ensemble versions pool their members (weights by language), and compared "
            "with each run and with their plain arithmetic and geometric means."
        ),
    ] = None,
) -> None:
    """The study's cross-lingual table, or the "others" protocol, on the shared corpus (the LoRA model runs in the
    worker's own process, which has the model stack, with the options below handed on; the fast model runs here)."""
    if protocol not in ("study", *PROTOCOLS) or backend not in ("lora", "encoder", "fast"):
        raise LingualoopError(
            f"Unknown --protocol '{protocol}' or --backend '{backend}': use study, others or lolo, lora, encoder "
            "or fast."
        )
    if leave_out and protocol != "lolo":
        raise LingualoopError("--leave-out names the languages of --protocol lolo.")
    if backend != "lora" and protocol == "study":
        raise LingualoopError(f"The {backend} model runs the others or lolo protocol: add --protocol others.")
    if (average or backend == "fast") and ctx.args:  # the worker's options would be silently ignored here
        raise LingualoopError(f"{' '.join(ctx.args)}: only a LoRA or encoder run takes these.")
    if average:
        _average_runs([Path(part) for part in average.split(",") if part.strip()], out)
        return
    if backend == "fast":
        _fast_protocol(
            state(ctx).settings.data_dir, train, test, protocol, folds, leave_out, language_power, out
        )
        return
    _run_worker_process(ctx, ["experiment", *typed_args(ctx)])


def _fast_protocol(
    data_dir: Path,
    train: Path,
    test: Path,
    protocol: str,
    folds: int,
    leave_out: str | None,
    language_power: str | None,
    out: Path | None,
) -> None:
    """A protocol with the fast model, one run per language power, compared pairwise with the first."""
    try:
        powers = parse_powers(language_power, DEFAULT_LANGUAGE_POWER)
        train_posts, test_posts = read_study_csv(train), read_study_csv(test)
        only = [code.strip() for code in leave_out.split(",") if code.strip()] if leave_out else None
        splits = protocol_folds(protocol, train_posts, test_posts, folds, languages=only)
    except (OSError, ValueError) as error:
        raise LingualoopError(str(error)) from None

    def log(message: str) -> None:
        console.print(message, highlight=False, soft_wrap=True)

    def run(power: float) -> dict[str, Any]:
        log(f"fast model, language power {power:g}: {len(splits)} folds")
        return run_fast_protocol(splits, data_dir / "embeddings", power, log)

    compare_powers("fast", powers, run, log, out)


def _average_runs(files: list[Path], out: Path | None) -> None:
    """The ensemble of earlier protocol runs (each file's first run), pooled as an ensemble version pools its
    members (weighted by language, core.crossval.weighted_report), scored and compared with each run and with
    the plain arithmetic and geometric means."""
    try:
        runs = [next(iter(json.loads(path.read_text(encoding="utf-8")).values())) for path in files]
        names = [path.stem for path in files]
        ensemble = weighted_report(runs)
        others = {f"{rule} mean": ensemble_report(runs, rule) for rule in RULES}
    except (OSError, ValueError, StopIteration, AttributeError, KeyError) as error:
        raise LingualoopError(f"Cannot average {', '.join(map(str, files))}: {error}") from None
    name = "weighted by language: " + " + ".join(names)
    console.print(format_protocol_table(name, ensemble), highlight=False, soft_wrap=True)
    for run_name, run in [*zip(names, runs, strict=True), *others.items()]:
        console.print(compare_runs([run_name, name], [run, ensemble]), highlight=False, soft_wrap=True)
    if out is not None:
        out.write_text(json.dumps({name: ensemble}, indent=2), encoding="utf-8")


@model_cli.command("prepare")
def model_prepare(ctx: typer.Context) -> None:
    """Convert the packaged Gemma-3-270M into a checkpoint in the data folder ahead of the first retrain."""
    _run_worker_process(ctx, ["prepare"])
