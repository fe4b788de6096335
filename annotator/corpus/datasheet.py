"""The Markdown datasheet that goes beside an export: counts per language and label, annotators, agreement,
flagged posts, imports and model versions, from what the export gathered while it wrote its rows (ExportStats)."""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.annotation.agreement import AlphaAccumulator
from annotator.annotation.flags import FLAG_STATES, flag_counts
from core.labels import LABELS
from core.languages import language_name
from core.metrics import VersionMetrics
from db.models import ImportRun, ModelVersion, Project, utcnow


@dataclass
class ExportStats:
    """What the datasheet reports, gathered while rows are written."""

    rows: int = 0
    per_language_label: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    per_split: Counter[str] = field(default_factory=Counter)
    per_annotator: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    alpha_all: AlphaAccumulator = field(default_factory=AlphaAccumulator)
    alpha_by_language: dict[str, AlphaAccumulator] = field(
        default_factory=lambda: defaultdict(AlphaAccumulator)
    )
    predictions_version: int | None = None
    """The model version whose probabilities the export carries, if any."""


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def render_datasheet(session: Session, project: Project, stats: ExportStats, *, export_name: str) -> str:
    """Markdown: counts per language and label, annotators, agreement, imports and model versions."""
    generated: datetime = utcnow()
    lines = [
        f"# Datasheet: {project.name}",
        "",
        f"Exported {stats.rows:,} posts to `{export_name}` on {generated:%Y-%m-%d %H:%M} UTC by lingualoop.",
        "",
        "## Label scheme",
        "",
        "| code | display name |",
        "| --- | --- |",
        *[f"| {code} | {project.label_names.get(code, code)} |" for code in LABELS],
        "",
        "`label` is the adjudicated label where one exists, else the majority of annotators' labels; "
        "a tie leaves it empty.",
        "",
        "## Posts per language and label",
        "",
    ]
    header = [*LABELS, "(no label)"]
    lines += [
        "| language | " + " | ".join(header) + " | total |",
        "| --- | " + " | ".join("---:" for _ in header) + " | ---: |",
    ]
    totals: Counter[str] = Counter()
    for language in sorted(stats.per_language_label):
        counts = stats.per_language_label[language]
        totals.update(counts)
        cells = " | ".join(str(counts.get(label, 0)) for label in header)
        lines.append(f"| {language} ({language_name(language)}) | {cells} | {sum(counts.values())} |")
    lines.append(
        "| **all** | "
        + " | ".join(str(totals.get(label, 0)) for label in header)
        + f" | {sum(totals.values())} |"
    )
    lines += [
        "",
        "Posts per split: " + ", ".join(f"{k} {v:,}" for k, v in sorted(stats.per_split.items())),
        "",
    ]
    lines += ["## Annotators", "", "| annotator | labels |", "| --- | ---: |"]
    lines += [f"| {name} | {count:,} |" for name, count in sorted(stats.per_annotator.items())] or [
        "| (none) | 0 |"
    ]
    lines += [
        "",
        "## Agreement",
        "",
        f"Posts labelled by two or more annotators: {stats.alpha_all.units:,}. "
        f"Krippendorff's alpha (nominal), all languages: {_fmt(stats.alpha_all.alpha())}.",
        "",
    ]
    if stats.alpha_by_language:
        lines += ["| language | posts with 2+ labels | alpha |", "| --- | ---: | ---: |"]
        lines += [
            f"| {lang} | {acc.units} | {_fmt(acc.alpha())} |"
            for lang, acc in sorted(stats.alpha_by_language.items())
        ]
        lines.append("")
    lines += ["Label sources: " + ", ".join(f"{k} {v:,}" for k, v in sorted(stats.sources.items())), ""]
    flagged = flag_counts(session, project)
    lines += ["## Flagged posts", ""]
    lines.append(
        f"{sum(flagged.values()):,} posts flagged by annotators: "
        + ", ".join(f"{state} {flagged.get(state, 0):,}" for state in FLAG_STATES)
        + ". The columns `flags`, `flag_reasons` (annotator: reason) and `flag_decision` say which; "
        "excluded posts stay in the export, marked, and out of training."
        if flagged
        else "No post was flagged."
    )
    lines.append("")
    imports = session.scalars(
        select(ImportRun).where(ImportRun.project_id == project.id).order_by(ImportRun.id)
    )
    lines += [
        "## Imports",
        "",
        "| # | file | split | rows | posts added | duplicates | labels | skipped |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r.id} | {r.filename} | {r.split} | {r.rows_read:,} | {r.posts_added:,} | {r.duplicates:,} | "
        f"{r.labels_added:,} | {r.rows_skipped:,} |"
        for r in imports
    ]
    versions = list(
        session.scalars(
            select(ModelVersion).where(ModelVersion.project_id == project.id).order_by(ModelVersion.id)
        )
    )
    lines += ["", "## Model versions", ""]
    if not versions:
        lines.append("No model versions yet.")
    else:
        lines += [
            "| version | parent | backend | base model | status | current | macro-F1 |",
            "| ---: | ---: | --- | --- | --- | --- | ---: |",
        ]
        for v in versions:
            f1 = VersionMetrics.of(v.metrics).macro_f1
            lines.append(
                f"| {v.id} | {v.parent_id or ''} | {v.backend} | {v.base_model} | {v.status} | "
                f"{'yes' if v.is_current else ''} | {_fmt(f1)} |"
            )
    if stats.predictions_version is not None:
        lines += [
            "",
            f"The prediction columns (`model_version`, `p_*`, `predicted`, `confidence`) hold version "
            f"{stats.predictions_version}'s probabilities for every post it scored, eval posts included.",
        ]
    return "\n".join(lines) + "\n"
