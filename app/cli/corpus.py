"""Projects and their posts: the schema, init, import, export, status, backup and restore."""

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import make_url

from annotator.accounts.access import OPERATOR
from annotator.corpus.export import export_project
from annotator.corpus.ingest import ColumnMapping, ImportOptions, ImportReport, import_file
from annotator.corpus.projects import create_project, get_project, list_projects
from annotator.errors import ImportValidationError, LingualoopError
from annotator.reports.status import project_status
from app.cli.common import (
    ProjectOption,
    _phase_bars,
    _progress,
    _split_codes,
    cli,
    console,
    db_cli,
    friendly_errors,
    state,
)
from core.labels import LABELS
from core.languages import language_name
from db.backup import backup, restore
from db.engine import make_engine
from db.migrate import current_revision, head_revision, upgrade
from db.models import Split


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
            by=OPERATOR,
        )
        console.print(
            f"Created project [bold]{project.name}[/] (languages: {', '.join(project.languages) or 'any'})."
        )


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
    if report.controls_marked:
        table.add_row("control posts marked", f"{report.controls_marked:,}")
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
    controls: Annotated[
        bool,
        typer.Option(
            "--controls",
            help="The label column is each post's gold answer: the posts (also those already in the project) "
            "become control posts, and every row needs a label. label__<user> columns stay that annotator's "
            "answers on the control.",
        ),
    ] = False,
) -> None:
    """Import posts (and their labels, if any) in one transaction: every valid row lands or none does."""
    mapping = ColumnMapping(text=text_col, id=id_col, language=lang_col, label=label_col)
    options = ImportOptions(
        split=split, annotator=annotator, skip_invalid=skip_invalid, max_chars=max_chars, controls=controls
    )
    try:
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
                by=OPERATOR,
            )
    except ImportValidationError as error:
        raise LingualoopError(
            f"{error}\nFix the file, or pass --skip-invalid to import the other rows."
        ) from None
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
    with_predictions: Annotated[
        bool, typer.Option(help="Add a model's probabilities for every post it scored, eval posts included.")
    ] = False,
    version: Annotated[
        int | None,
        typer.Option(
            help="The model version whose probabilities --with-predictions adds (default: current)."
        ),
    ] = None,
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
            with_predictions=with_predictions or version is not None,
            version_id=version,
            datasheet=sheet,
            progress=lambda done: bar.update(task, completed=done),
            by=OPERATOR,
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


def _versions(ids: list[int]) -> str:
    return f"version{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))}"


@cli.command("backup")
@friendly_errors
def backup_command(
    ctx: typer.Context,
    destination: Annotated[Path, typer.Argument(help="New file for the backup.")],
) -> None:
    """Back up the whole database (SQLite online backup, or pg_dump) and the model versions' files in the data
    folder, in one tar archive; safe while the app and worker run."""
    settings = state(ctx).settings
    written = backup(settings.database_url, settings.data_dir, destination)
    console.print(
        f"Backup written to {written.path} ({written.path.stat().st_size:,} bytes, readable only by you): the "
        f"database and the files of {len(written.carried)} model version(s)."
    )
    if written.left_out:
        console.print(
            f"[yellow]Left out: the files of model {_versions(written.left_out)}, which are not in "
            f"{settings.data_dir / 'adapters'} on this machine (a worker elsewhere keeps them, or they were "
            "deleted); a restore of this backup cannot score with those versions.[/yellow]"
        )


@cli.command("restore")
@friendly_errors
def restore_command(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="A file written by `lingualoop backup`.")],
    yes: Annotated[bool, typer.Option("--yes", help="Replace the current database without asking.")] = False,
) -> None:
    """Replace the database with a backup, and put its model versions' files back in the data folder. Stop the
    app and the workers first."""
    settings = state(ctx).settings
    url = settings.database_url
    if not yes and not typer.confirm(
        f"Replace everything in {make_url(url).render_as_string()} (and the backed-up model versions' files in "
        f"{settings.data_dir / 'adapters'}) with {source}?"
    ):
        raise typer.Exit(1)
    done = restore(url, settings.data_dir, source)
    if done.had_files:
        console.print(
            f"Restored {source}: the database and the files of {len(done.restored)} model version(s) in "
            f"{settings.data_dir / 'adapters'}."
        )
    else:
        console.print(
            f"Restored {source}: the database only. The model files were not in the backup (it was written "
            "before backups carried them)."
        )
    if done.missing:
        console.print(
            f"[yellow]The files of model {_versions(done.missing)} are not on this machine: copy each version's "
            f"folder into {settings.data_dir / 'adapters'}/project-P/version-V, or retrain.[/yellow]"
        )
