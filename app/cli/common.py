"""Shared by every command: the root command, its state (settings, engine, transactions), clear errors, progress bars."""

import functools
import json
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from typer.core import TyperCommand

from annotator.errors import LingualoopError
from app.processes import trainer_command
from db.backup import BackupError
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import SchemaOutOfDateError, ensure_schema
from db.settings import SecretFileError, Settings, settings_from_env

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


SET_FOR_THE_WORKER = frozenset({"--database-url", "--data-dir", "--version-id"})
"""The model worker's options that lingualoop sets itself (the database in the environment), never handed on."""
_TYPED = "lingualoop.typed_args"


class WorkerSideCommand(TyperCommand):
    """A command that hands over to the model worker (`python -m trainer NAME`), which declares the options: what
    this command does not declare itself reaches the worker untouched, and its --help lists those options too."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta[_TYPED] = list(args)
        return super().parse_args(ctx, args)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        super().format_help(ctx, formatter)
        ours = {name for param in self.params for name in [*param.opts, *param.secondary_opts]}
        rows = Table.grid(padding=(0, 2))
        for option in _worker_options(self.name or ""):
            if not ours & set(option["names"]) and not SET_FOR_THE_WORKER & set(option["names"]):
                rows.add_row(Text(option["usage"]), Text(option["help"]))  # text, not markup: "[default: 2]"
        title = f"Handed on untouched to the model worker (python -m trainer {self.name})"
        Console().print(Panel(rows, title=title, title_align="left", border_style="dim"))


def _worker_options(command: str) -> list[dict[str, Any]]:
    """The worker command's options as it declares them (it runs without the model stack, in about a second)."""
    done = subprocess.run(
        trainer_command(["options", command]), capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        return [{"names": [], "usage": f"python -m trainer {command} --help", "help": "lists them"}]
    options: list[dict[str, Any]] = json.loads(done.stdout)
    return options


WORKER_SIDE: dict[str, Any] = {
    "cls": WorkerSideCommand,
    "context_settings": {"allow_extra_args": True, "ignore_unknown_options": True},
}
"""`@cli.command(**WORKER_SIDE)`: a WorkerSideCommand."""


def typed_args(ctx: typer.Context) -> list[str]:
    """Everything typed after a WorkerSideCommand's name, for a worker command that declares its options too."""
    _refuse_what_we_set(ctx)
    return list(ctx.meta[_TYPED])


def extra_args(ctx: typer.Context) -> list[str]:
    """What a WorkerSideCommand does not declare itself, untouched and in order, for the worker."""
    _refuse_what_we_set(ctx)
    return list(ctx.args)


def _refuse_what_we_set(ctx: typer.Context) -> None:
    for arg in ctx.args:
        if arg.split("=", 1)[0] in SET_FOR_THE_WORKER:
            raise typer.BadParameter(
                f"{arg.split('=', 1)[0]} is lingualoop's to set (give --database-url and --data-dir before the "
                "command's name)."
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


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _split_codes(value: str | None) -> list[str]:
    return [code.strip() for code in (value or "").split(",") if code.strip()]
