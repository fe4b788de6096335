"""Shared by every command: the root command, its state (settings, engine, transactions), clear errors, progress bars."""

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from annotator.errors import LingualoopError
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
