"""Findings: label shares per language (and metadata column), raw and corrected for the model's errors."""

import csv
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from annotator.accounts.access import OPERATOR
from annotator.corpus.projects import get_project
from annotator.reports.findings import (
    LANGUAGE,
    compute_findings,
    errors_source,
    group_by_columns,
    input_files,
    project_inputs,
    table_rows,
)
from annotator.reports.quantify import DEFAULT_METHOD, METHODS, MIN_EVAL_POSTS
from app.cli.common import ProjectOption, _progress, cli, console, friendly_errors, state
from core.files import atomic_path
from core.labels import LABELS


@cli.command("prevalence")
@friendly_errors
def prevalence(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="CSV file for the table (one row per group, label and method).")],
    project: ProjectOption = None,
    version: Annotated[
        int | None, typer.Option(help="Model version (default: the current one, or the one the input names).")
    ] = None,
    input: Annotated[
        list[Path] | None,
        typer.Option(
            "--input",
            help="Files or folders of scored posts (an export with predictions, Parquet shards, or "
            "any file with p_pro..p_unrelated and a language column). Default: the project's pool.",
        ),
    ] = None,
    by: Annotated[str, typer.Option(help="Group by: lang, plus metadata columns (lang,country).")] = LANGUAGE,
    lang_col: Annotated[
        str | None, typer.Option(help="The input's language column (default: lang or language).")
    ] = None,
    methods: Annotated[str, typer.Option(help=f"Comma separated, from {', '.join(METHODS)}.")] = ",".join(
        METHODS
    ),
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples for the 95% intervals.")] = 200,
    min_eval: Annotated[
        int, typer.Option(help="Eval posts a language needs to be corrected with its own errors.")
    ] = MIN_EVAL_POSTS,
    fallback: Annotated[
        str, typer.Option(help="A language with too few eval posts: raw (left uncorrected) or pooled errors.")
    ] = "raw",
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
) -> None:
    """Share of pro / anti / neutral / unrelated posts per group, counted and corrected for the model's
    per-language errors on the eval split, with bootstrap 95% intervals (docs/prevalence.md)."""
    group_by = group_by_columns(by)
    chosen = [m.strip() for m in methods.split(",") if m.strip()]
    paths = [file for path in input or [] for file in input_files(path)]
    with state(ctx).transaction(read_only=True) as session:
        inputs = project_inputs(
            session,
            get_project(session, project),
            group_by,
            by=OPERATOR,
            version_id=version,
            input_paths=paths,
            lang_col=lang_col,
        )
    with _progress() as bar:
        task = bar.add_task("bootstrap", total=resamples)
        findings = compute_findings(
            inputs.counted,
            inputs.evals,
            inputs.version_id,
            group_by,
            methods=chosen,
            resamples=resamples,
            min_eval=min_eval,
            fallback=fallback,
            seed=seed,
            notes=inputs.notes,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    rows = table_rows(findings)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as partial, partial.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    shown = DEFAULT_METHOD if DEFAULT_METHOD in chosen else chosen[-1]
    summary = Table(
        *group_by,
        "posts",
        "errors",
        *[f"{label} {method}" for label in ("anti", "pro") for method in dict.fromkeys(["cc", shown])],
        title=f"Model version {findings.version_id}: shares of all posts, raw (cc) and corrected ({shown}), "
        "with 95% intervals",
    )
    for group in findings.groups:
        cells = []
        for label in ("anti", "pro"):
            i = LABELS.index(label)
            for method in dict.fromkeys(["cc", shown]):
                if method not in chosen:
                    cells.append("-")
                    continue
                low, high = group.interval(method)
                cells.append(f"{group.point[method][i]:.2f} ({low[i]:.2f}-{high[i]:.2f})")
        summary.add_row(*group.key, f"{group.posts:,}", errors_source(group, findings.fallback), *cells)
    console.print(summary)
    for note in findings.notes:
        console.print(f"[yellow]Note:[/] {note}", soft_wrap=True)
    console.print(f"{len(rows):,} rows written to {out} ({', '.join(chosen)}; scopes all and related).")
