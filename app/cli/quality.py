"""Control posts and guidelines from the command line: mark, list and unmark controls, take them from the eval
split, and set the project's guideline or a translation of it. (`lingualoop import --controls` imports controls
from a file; `lingualoop annotators` reports on the annotators and holds the quality settings.)"""

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.corpus.projects import get_project
from annotator.errors import LingualoopError
from annotator.quality.controls import controls_from_eval, list_controls, mark_control, unmark_control
from annotator.quality.guidelines import guideline_for, guideline_history, set_guideline
from app.cli.common import ProjectOption, cli, console, friendly_errors, state
from core.languages import language_name
from db.models import Item, Project

controls_cli = typer.Typer(
    help="Control posts: posts with a known label that score annotators.", no_args_is_help=True
)
cli.add_typer(controls_cli, name="controls")
guideline_cli = typer.Typer(
    help="The project's guideline and its translations, versioned.", no_args_is_help=True
)
cli.add_typer(guideline_cli, name="guideline")


def _post_id(session: Session, project: Project, external_id: str) -> int:
    item_id = session.scalar(
        select(Item.id).where(Item.project_id == project.id, Item.external_id == external_id)
    )
    if item_id is None:
        raise LingualoopError(f"No post with id '{external_id}' in project '{project.name}'.")
    return item_id


@controls_cli.command("add")
@friendly_errors
def controls_add(
    ctx: typer.Context,
    post: Annotated[str, typer.Argument(help="The post's id, as imported.")],
    label: Annotated[str, typer.Option(help="The gold answer: pro, anti, neutral or unrelated.")],
    project: ProjectOption = None,
) -> None:
    """Make a post a control with its gold label."""
    with state(ctx).transaction() as session:
        chosen = get_project(session, project)
        mark_control(session, chosen, OPERATOR, _post_id(session, chosen, post), label)
    console.print(f"Post {post} is a control post (gold label: {label}).")


@controls_cli.command("remove")
@friendly_errors
def controls_remove(
    ctx: typer.Context,
    post: Annotated[str, typer.Argument(help="The post's id, as imported.")],
    project: ProjectOption = None,
) -> None:
    """Stop serving a post as a control (the answers given on it stay)."""
    with state(ctx).transaction() as session:
        chosen = get_project(session, project)
        unmark_control(session, chosen, OPERATOR, _post_id(session, chosen, post))
    console.print(f"Post {post} is no longer a control post.")


@controls_cli.command("from-eval")
@friendly_errors
def controls_from_eval_command(
    ctx: typer.Context,
    per_language: Annotated[int, typer.Option(help="Labelled eval posts to use per language.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the random choice.")] = 0,
    project: ProjectOption = None,
) -> None:
    """Use labelled eval posts as controls (they stay in the eval split and keep scoring the models)."""
    with state(ctx).transaction() as session:
        marked = controls_from_eval(
            session, get_project(session, project), OPERATOR, per_language=per_language, seed=seed
        )
    for language, count in marked.items():
        console.print(f"{language_name(language)} ({language}): {count} control posts")


@controls_cli.command("list")
@friendly_errors
def controls_list(ctx: typer.Context, project: ProjectOption = None) -> None:
    """The control posts, with how often annotators got each right."""
    with state(ctx).transaction(read_only=True) as session:
        chosen = get_project(session, project)
        rows = list_controls(session, chosen)
        ids = dict(
            session.execute(
                select(Item.id, Item.external_id).where(Item.id.in_([r.item_id for r in rows]))
            ).all()
        )
    if not rows:
        console.print(
            "No control posts yet: `lingualoop controls from-eval`, `lingualoop import FILE --controls`, or "
            "'Use as a control post' on the Adjudicate page."
        )
        return
    table = Table("post", "language", "gold", "source", "answers", "right", "text")
    for row in rows:
        share = "" if row.share_right is None else f" ({row.share_right:.0%})"
        table.add_row(
            ids[row.item_id],
            row.language,
            row.label,
            row.source,
            str(row.answers),
            f"{row.right}{share}",
            row.text[:60],
        )
    console.print(table)


@guideline_cli.command("set")
@friendly_errors
def guideline_set(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="A Markdown file with the guideline's text.", exists=True, dir_okay=False)
    ],
    language: Annotated[
        str | None,
        typer.Option(help="A translation for this language (default: the project's own guideline)."),
    ] = None,
    project: ProjectOption = None,
) -> None:
    """Add a new version of the guideline or of one language's translation (an empty file withdraws a
    translation)."""
    text = file.read_text(encoding="utf-8")
    with state(ctx).transaction() as session:
        saved = set_guideline(session, get_project(session, project), OPERATOR, text, language)
        version, code = saved.version, saved.language
    where = f"{language_name(code)} ({code}) translation" if code else "project guideline"
    console.print(f"Saved the {where}, version {version}.")


@guideline_cli.command("show")
@friendly_errors
def guideline_show(
    ctx: typer.Context,
    language: Annotated[str | None, typer.Option(help="What an annotator of this language is shown.")] = None,
    project: ProjectOption = None,
) -> None:
    """The guideline an annotator of a language is shown, and the versions there have been."""
    with state(ctx).transaction(read_only=True) as session:
        chosen = get_project(session, project)
        shown = guideline_for(session, chosen, language or "")
        history = guideline_history(session, chosen, "*")
    title = f"{language_name(shown.language)} translation" if shown.language else "Project guideline"
    console.print(f"[bold]{title}, version {shown.version}[/bold]\n")
    console.print(shown.text or "(empty)")
    if history:
        table = Table("language", "version", "by", "saved")
        for version in history:
            table.add_row(
                version.language or "(project)",
                str(version.version),
                version.author,
                f"{version.created_at:%Y-%m-%d %H:%M}",
            )
        console.print(table)
