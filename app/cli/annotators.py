"""Annotators: how reliable each one is per language, excluding or including their labels, admitting one who is
qualifying, and the project's label-quality settings."""

import json
from dataclasses import replace
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.corpus.projects import get_project
from annotator.errors import LingualoopError
from annotator.quality.exclusions import exclude_annotator, include_annotator
from annotator.quality.qualification import admit
from annotator.quality.settings import quality_settings, update_quality
from annotator.reports.annotators import AnnotatorReport, AnnotatorRow, annotator_report, model_votes_text
from app.cli.common import ProjectOption, cli, console, friendly_errors, state
from core.languages import language_name
from core.quality import AGGREGATIONS
from db.models import Project


@cli.command("annotators")
@friendly_errors
def annotators(
    ctx: typer.Context,
    project: ProjectOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON instead of a table.")
    ] = False,
    exclude: Annotated[
        str | None,
        typer.Option(
            help="Leave this annotator's labels out of training and consensus (reversible; give --note)."
        ),
    ] = None,
    note: Annotated[
        str, typer.Option(help="Why you exclude them (kept in the history and the datasheet).")
    ] = "",
    include: Annotated[str | None, typer.Option(help="Take an excluded annotator's labels back in.")] = None,
    admit_user: Annotated[
        str | None, typer.Option("--admit", help="Admit a qualifying annotator by hand (with --language).")
    ] = None,
    language: Annotated[str | None, typer.Option(help="The language --admit admits them to.")] = None,
    controls_rate: Annotated[
        float | None, typer.Option(help="Share of controls after the first answers (0.05: one in 20).")
    ] = None,
    controls_rate_start: Annotated[
        float | None, typer.Option(help="Share of controls in an annotator's first answers (0.2: one in 5).")
    ] = None,
    qualification: Annotated[
        bool | None,
        typer.Option(
            "--qualification/--no-qualification", help="New annotators of a language qualify first."
        ),
    ] = None,
    qualification_controls: Annotated[
        int | None, typer.Option(help="Controls in a qualification round.")
    ] = None,
    qualification_threshold: Annotated[
        float | None, typer.Option(help="Share right that passes a qualification round (0.7: 70%).")
    ] = None,
    aggregation: Annotated[
        str | None, typer.Option(help=f"How labels are aggregated: {' or '.join(AGGREGATIONS)}.")
    ] = None,
    model_votes: Annotated[
        bool | None,
        typer.Option(
            "--model-votes/--no-model-votes",
            help="The reliability model counts the fast model's cross-fitted votes as one more voter.",
        ),
    ] = None,
) -> None:
    """Per annotator and language: answers, accuracy on control posts with its 95% interval, the reliability
    model's estimated accuracy, seconds per label, agreement with the others, and a flag when they are far below
    the others. The options act first (in one transaction), then the report is printed."""
    changes = {
        "control_rate": controls_rate,
        "control_rate_start": controls_rate_start,
        "qualification": qualification,
        "qualification_controls": qualification_controls,
        "qualification_threshold": qualification_threshold,
        "aggregation": aggregation,
        "model_votes": model_votes,
    }
    changes = {name: value for name, value in changes.items() if value is not None}
    if admit_user is not None and not language:
        raise LingualoopError("Say which language to admit them to: --admit USER --language CODE.")
    done: list[str] = []
    if exclude or include or admit_user or changes:
        with state(ctx).transaction() as session:
            chosen = get_project(session, project)
            done = _act(session, chosen, exclude, note, include, admit_user, language, changes)
    with state(ctx).transaction(read_only=True) as session:
        report = annotator_report(session, get_project(session, project), by=OPERATOR)
    if as_json:
        typer.echo(json.dumps(_as_json(report), indent=2))
        return
    for line in done:
        console.print(line)
    _print_report(report)


def _act(
    session: Session,
    project: Project,
    exclude: str | None,
    note: str,
    include: str | None,
    admit_user: str | None,
    language: str | None,
    changes: dict[str, Any],
) -> list[str]:
    """Do what the options ask, in order; the first refusal raises and the transaction saves nothing."""
    done = []
    if changes:
        update_quality(session, project, OPERATOR, replace(quality_settings(project), **changes))
        done.append("Label-quality settings saved.")
    if exclude:
        exclude_annotator(session, project, OPERATOR, exclude, note)
        done.append(f"The labels of '{exclude}' are now left out of training and consensus.")
    if include:
        include_annotator(session, project, OPERATOR, include)
        done.append(f"The labels of '{include}' count again.")
    if admit_user and language:
        admit(session, project, OPERATOR, admit_user, language)
        done.append(f"'{admit_user}' is admitted to label {language_name(language)} ({language}).")
    return done


def _as_json(report: AnnotatorReport) -> dict[str, Any]:
    return {
        "settings": report.settings.as_json(),
        "controls": report.controls,
        "min_control_answers": report.min_control_answers,
        "voting_version": report.voting_version,
        "model_accuracy": report.model_accuracy,
        "annotators": [row.as_json() for row in report.rows],
    }


LEGEND = (
    "right: share right on control posts with its 95% interval; model: the reliability model's estimated "
    "accuracy; s/label: median seconds; agrees: share matching the others' majority (posts)."
)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _controls_cell(row: AnnotatorRow) -> str:
    if row.control_accuracy is None or row.control_interval is None:
        return "not measured yet"
    low, high = row.control_interval
    return f"{row.control_accuracy:.0%} ({low * 100:.0f}-{high * 100:.0f})"


def _notes(row: AnnotatorRow) -> list[str]:
    """What does not fit in a cell: the flag's reason, the exclusion's note, the qualification."""
    found = [f"flagged: {row.flag}"] if row.flag else []
    if row.excluded:
        found.append(f"excluded: {row.exclusion_note or '(no note)'}")
    if row.qualification is not None:
        found.append(f"qualification: {row.qualification}")
    return found


def _print_report(report: AnnotatorReport) -> None:
    settings = report.settings
    console.print(
        f"Aggregation: {settings.aggregation}. Controls: {_controls_summary(report)}. Qualification: "
        + (
            f"on ({settings.qualification_controls} controls, {settings.qualification_threshold:.0%} to pass)."
            if settings.qualification
            else "off."
        ),
        soft_wrap=True,
    )
    console.print(model_votes_text(report), soft_wrap=True)
    if not report.rows:
        console.print("No annotator has answered yet: the table fills as labels come in.")
        return
    for language in report.languages:
        rows = report.in_language(language)
        table = Table(
            "annotator",
            "labels",
            "controls",
            "right (95%)",
            "model",
            "s/label",
            "agrees",
            "flag",
            title=f"{language_name(language)} ({language})",
            title_justify="left",
        )
        for row in rows:
            table.add_row(
                row.username + (" (excluded)" if row.excluded else ""),
                f"{row.answers:,}",
                f"{row.control_answers:,}",
                _controls_cell(row),
                _share(row.estimated_accuracy),
                "-" if row.median_seconds is None else f"{row.median_seconds:.1f}",
                _share(row.agreement) + (f" ({row.shared_posts:,})" if row.shared_posts else ""),
                "FLAG" if row.flag else "",
            )
        console.print(table)
        console.print(LEGEND, soft_wrap=True, style="dim")
        for row in rows:
            for line in _notes(row):
                console.print(f"  {row.username}: {line}", soft_wrap=True, highlight=False)
    if not report.controls:
        console.print(
            "No control posts yet: mark posts with a known label as controls (the Adjudicate page, or "
            "`lingualoop import FILE --controls`) to measure accuracy.",
            soft_wrap=True,
        )


def _controls_summary(report: AnnotatorReport) -> str:
    if not report.controls:
        return "none"
    counts = ", ".join(f"{n} {code}" for code, n in report.controls.items())
    return f"{counts}; accuracy is shown from {report.min_control_answers} answers on them"
