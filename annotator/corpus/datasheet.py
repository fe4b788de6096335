"""The Markdown datasheet that goes beside an export: counts per language and label, annotators, agreement, label
quality (the aggregation method, control accuracy per language and annotator, excluded annotators, the guideline
versions used), flagged posts, imports and model versions, from what the export gathered while it wrote its rows
(ExportStats) and, for label quality, from the database."""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Integer, case, func, select
from sqlalchemy.orm import Session, aliased

from annotator.annotation.agreement import AlphaAccumulator
from annotator.annotation.flags import FLAG_STATES, flag_counts
from core.labels import LABELS
from core.languages import language_name
from core.metrics import VersionMetrics
from core.quality import QualitySettings
from core.reliability import MIN_CONTROL_ANSWERS, wilson_interval
from db.consensus import voting_version
from db.models import (
    Annotation,
    AnnotationKind,
    AnnotatorExclusion,
    ControlPost,
    ImportRun,
    Item,
    ModelVersion,
    Project,
    User,
    utcnow,
)


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
    guidelines: Counter[str] = field(default_factory=Counter)
    """Labels per guideline version shown ("tr v2", "v3"; "" when unknown)."""


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _aggregation_text(aggregation: str, voting_version: int | None) -> str:
    if aggregation == "reliability":
        voter = (
            f" (with the cross-fitted votes of fast model version {voting_version} as one more voter: each "
            "labelled post's label as predicted by a model that did not train on it)"
            if voting_version is not None
            else ""
        )
        method = (
            "the reliability model's label: per language, Dawid-Skene estimates each annotator's confusion from "
            f"all their answers{voter}, anchored on the control posts' gold labels, and `label_probability` is "
            "the posterior probability of the label"
        )
    else:
        method = (
            "the majority of the annotators' labels (a tie leaves it empty), and `label_probability` is the "
            "share of annotators who gave it"
        )
    return (
        f"Aggregation: **{aggregation}**. `label` is the adjudicated label where one exists, else a control "
        f"post's gold label, else {method}. Labels of excluded annotators count in neither. `label_source` "
        "says which."
    )


def _control_accuracy(session: Session, project: Project) -> list[tuple[str, str, int, int]]:
    """(language, annotator, control answers, right) for every annotator who labelled an active control."""
    right = func.sum(case((Annotation.label == ControlPost.label, 1), else_=0)).cast(Integer)
    rows = session.execute(
        select(Item.language, User.username, func.count(Annotation.id), right)
        .join(Annotation, Annotation.item_id == Item.id)
        .join(ControlPost, ControlPost.item_id == Item.id)
        .join(User, User.id == Annotation.user_id)
        .where(
            Item.project_id == project.id,
            ControlPost.active.is_(True),
            Annotation.kind == AnnotationKind.LABEL,
        )
        .group_by(Item.language, User.username)
        .order_by(Item.language, User.username)
    ).all()
    return [
        (language, username, int(answered), int(correct or 0))
        for language, username, answered, correct in rows
    ]


def _accuracy_cell(correct: int, answered: int) -> str:
    if answered < MIN_CONTROL_ANSWERS:
        return f"not measured yet (fewer than {MIN_CONTROL_ANSWERS} control answers)"
    low, high = wilson_interval(correct, answered)
    return f"{correct} of {answered} right ({correct / answered:.0%}; 95% interval {low:.0%} to {high:.0%})"


def _exclusions(session: Session, project: Project) -> list[tuple[str, str, str, datetime]]:
    """(annotator, excluded by, note, since) of the standing exclusions, oldest first."""
    excluder = aliased(User)
    rows = session.execute(
        select(User.username, excluder.username, AnnotatorExclusion.note, AnnotatorExclusion.created_at)
        .join(User, User.id == AnnotatorExclusion.user_id)
        .outerjoin(excluder, excluder.id == AnnotatorExclusion.excluded_by)
        .where(AnnotatorExclusion.project_id == project.id, AnnotatorExclusion.lifted_at.is_(None))
        .order_by(AnnotatorExclusion.created_at, AnnotatorExclusion.id)
    ).all()
    return [(name, by or "operator", note or "", since) for name, by, note, since in rows]


def _label_quality(session: Session, project: Project, stats: ExportStats) -> list[str]:
    """The datasheet's label-quality section: controls, exclusions and guideline versions."""
    lines = ["## Label quality", ""]
    accuracy = _control_accuracy(session, project)
    if not accuracy:
        lines += ["No annotator has labelled a control post yet.", ""]
    else:
        lines += [
            "Accuracy on control posts (posts with a known label, mixed into annotators' streams; `is_control` "
            "and `control_label` mark them):",
            "",
            "| language | annotator | control answers | accuracy |",
            "| --- | --- | ---: | --- |",
        ]
        lines += [
            f"| {language} ({language_name(language)}) | {name} | {answered} | {_accuracy_cell(correct, answered)} |"
            for language, name, answered, correct in accuracy
        ]
        lines.append("")
    excluded = _exclusions(session, project)
    if not excluded:
        lines += ["No annotator's labels are excluded.", ""]
    else:
        lines += [
            "Annotators whose labels are excluded from the consensus and from training (their labels stay in "
            "the `label__<user>` columns):",
            "",
            "| annotator | excluded by | since | note |",
            "| --- | --- | --- | --- |",
        ]
        lines += [
            f"| {name} | {by} | {since:%Y-%m-%d} | {note.replace('|', '/').replace(chr(10), ' ')} |"
            for name, by, note, since in excluded
        ]
        lines.append("")
    used = ", ".join(
        f"{tag or 'unknown (before versioned guidelines)'} {count:,}"
        for tag, count in sorted(stats.guidelines.items(), key=lambda item: (item[0] == "", item[0]))
    )
    lines += [
        f"Labels per guideline version shown (`guideline__<user>`; `tr v2` is the Turkish translation's second "
        f"version, `v3` the project's own guideline's third): {used or 'no labels yet'}.",
        "",
    ]
    return lines


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
        _aggregation_text(
            QualitySettings.of(project.quality).aggregation, voting_version(session, project.id)
        ),
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
    lines += _label_quality(session, project, stats)
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
