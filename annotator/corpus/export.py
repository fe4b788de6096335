"""Export a project's posts with consensus and per-annotator labels and their provenance (CSV, JSONL, Parquet) and
its Markdown datasheet (annotator/corpus/datasheet.py), in one streaming pass so the datasheet always matches the
file. The consensus is db/consensus.py's (the project's aggregation setting), the one training reads."""

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.accounts.access import RESEARCHERS, Actor, require_role
from annotator.annotation.flags import FLAG_COLUMNS, flag_columns
from annotator.corpus.datasheet import ExportStats, render_datasheet
from annotator.corpus.formulas import neutralise
from annotator.corpus.gcpause import no_gc_pauses
from annotator.errors import LingualoopError
from annotator.quality.guidelines import guideline_tags
from core.files import atomic_path
from core.labels import LABELS
from db.consensus import PostConsensus, project_consensus
from db.models import (
    Annotation,
    AnnotationKind,
    Item,
    ModelVersion,
    Project,
    User,
)
from db.quality import active_controls
from db.versions import VersionNotReady, ready_version, ready_versions, stream_probabilities

EXPORT_FORMATS = ("csv", "jsonl", "parquet")
BASE_COLUMNS = [
    "id",
    "text",
    "lang",
    "split",
    "label",
    "label_source",
    "label_probability",
    "n_labels",
    "agreement",
    "is_control",
    "control_label",
    *FLAG_COLUMNS,
]
ANNOTATOR_COLUMNS = ("label", "source", "guideline", "seconds")
"""Per annotator, side by side: `label__<user>`, `source__<user>` (app, labelstudio, import), `guideline__<user>`
(the guideline version they were shown, "tr v2"; empty when unknown) and `seconds__<user>`."""
PREDICTION_COLUMNS = ["model_version", *[f"p_{label}" for label in LABELS], "predicted", "confidence"]
_BATCH = 20_000


def export_format(path: Path, given: str | None = None) -> str:
    fmt = (given or path.suffix.lstrip(".")).lower()
    if fmt not in EXPORT_FORMATS:
        raise LingualoopError(
            f"Cannot export to '{fmt or path.name}': use a .csv, .jsonl or .parquet file name."
        )
    return fmt


def annotator_columns(names: list[str]) -> list[str]:
    return [f"{column}__{name}" for name in names for column in ANNOTATOR_COLUMNS]


@dataclass(frozen=True)
class UserLabel:
    """One annotator's label of a post and where it came from."""

    username: str
    label: str
    source: str
    guideline: str
    """The guideline version's tag ("tr v2", "v3"), "" when unknown."""
    seconds: float | None


def annotator_names(session: Session, project: Project) -> list[str]:
    """Users who labelled posts of this project, in name order."""
    query = (
        select(User.username)
        .distinct()
        .join(Annotation, Annotation.user_id == User.id)
        .join(Item, Item.id == Annotation.item_id)
        .where(Item.project_id == project.id)
        .order_by(User.username)
    )
    return list(session.scalars(query))


def predictions_version(session: Session, project: Project, version_id: int | None) -> ModelVersion | None:
    """The version whose probabilities an export carries: the one asked for (it must be a ready version of this
    project), else the current one (None when there is none)."""
    try:
        return ready_version(session, project.id, version_id)
    except VersionNotReady as error:
        ready = sorted(version.id for version in ready_versions(session, project.id))
        raise LingualoopError(
            f"{error}. "
            + (
                f"Ready versions of project '{project.name}': {', '.join(map(str, ready))}."
                if ready
                else f"Project '{project.name}' has no ready model version yet: retrain first."
            )
        ) from None


def iter_export_rows(
    session: Session,
    project: Project,
    *,
    with_predictions: bool = False,
    version_id: int | None = None,
    stats: ExportStats | None = None,
) -> Iterator[dict[str, Any]]:
    """One dict per post, in id order: consensus label (with its source and probability), whether it is a control,
    per-annotator labels with their provenance and, if asked, the probabilities of version `version_id` (default:
    the current version) for every post it scored, eval posts included."""
    stats = stats if stats is not None else ExportStats()
    annotators = annotator_names(session, project)
    version = predictions_version(session, project, version_id) if with_predictions else None
    stats.predictions_version = version.id if version is not None else None
    decided = project_consensus(session, project.id)
    controls = active_controls(session, project.id)
    flags = flag_columns(session, project)
    no_flags = {"flags": 0, "flag_reasons": None, "flag_decision": None}
    labels_by_item = _stream_labels(session, project)
    pending: tuple[int, list[UserLabel]] | None = next(labels_by_item, None)
    predictions = _stream_predictions(session, version) if version is not None else iter(())
    pending_prediction = next(predictions, None)
    items = session.execute(
        select(Item.id, Item.external_id, Item.text, Item.language, Item.split, Item.meta)
        .where(Item.project_id == project.id)
        .order_by(Item.id)
        .execution_options(yield_per=_BATCH)
    )
    for item_id, external_id, text, language, split, meta in items:
        user_labels: list[UserLabel] = []
        while pending is not None and pending[0] <= item_id:
            if pending[0] == item_id:
                user_labels = pending[1]
            pending = next(labels_by_item, None)
        chosen = decided.get(item_id) or PostConsensus(item_id, None, None, "none")
        split_value = str(getattr(split, "value", split))
        row: dict[str, Any] = {
            "id": external_id,
            "text": text,
            "lang": language,
            "split": split_value,
            "label": chosen.label,
            "label_source": chosen.source,
            "label_probability": None if chosen.probability is None else round(chosen.probability, 4),
            "n_labels": len(user_labels),
            "agreement": _agreement([given.label for given in user_labels], chosen.label),
            "is_control": item_id in controls,
            "control_label": controls.get(item_id),
            **flags.get(item_id, no_flags),
        }
        by_user = {given.username: given for given in user_labels}
        for name in annotators:
            given = by_user.get(name)
            row[f"label__{name}"] = given.label if given else None
            row[f"source__{name}"] = given.source if given else None
            row[f"guideline__{name}"] = given.guideline if given else None
            row[f"seconds__{name}"] = given.seconds if given else None
        row["meta"] = json.dumps(meta, ensure_ascii=False) if meta else None
        if version is not None:
            while pending_prediction is not None and pending_prediction[0] < item_id:
                pending_prediction = next(predictions, None)
            if pending_prediction is not None and pending_prediction[0] == item_id:
                row |= pending_prediction[1]
            else:
                row |= dict.fromkeys(PREDICTION_COLUMNS)
        _count(stats, row, user_labels)
        yield row


def _agreement(labels: list[str], label: str | None) -> float | None:
    """Share of the annotators' labels that agree with the exported label; where a tie left none, the share of
    the most given one (None without labels)."""
    if not labels:
        return None
    agreeing = labels.count(label) if label is not None else max(labels.count(given) for given in labels)
    return round(agreeing / len(labels), 4)


def _count(stats: ExportStats, row: dict[str, Any], user_labels: list[UserLabel]) -> None:
    stats.rows += 1
    stats.per_split[row["split"]] += 1
    stats.per_language_label[row["lang"]][row["label"] or "(no label)"] += 1
    stats.sources[row["label_source"]] += 1
    for given in user_labels:
        stats.per_annotator[given.username] += 1
        stats.guidelines[given.guideline or ""] += 1
    if len(user_labels) >= 2:
        values = [given.label for given in user_labels]
        stats.alpha_all.add(values)
        stats.alpha_by_language[row["lang"]].add(values)


def _stream_labels(session: Session, project: Project) -> Iterator[tuple[int, list[UserLabel]]]:
    """(item id, its labels in username order) for items with labels, in item id order."""
    tags = guideline_tags(session, project)
    result = session.execute(
        select(
            Annotation.item_id,
            User.username,
            Annotation.label,
            Annotation.source,
            Annotation.guideline_id,
            Annotation.seconds,
        )
        .join(User, User.id == Annotation.user_id)
        .join(Item, Item.id == Annotation.item_id)
        .where(Item.project_id == project.id, Annotation.kind == AnnotationKind.LABEL)
        .order_by(Annotation.item_id, User.username)
        .execution_options(yield_per=_BATCH)
    )
    current: int | None = None
    group: list[UserLabel] = []
    for item_id, username, label, source, guideline_id, seconds in result:
        if item_id != current:
            if current is not None:
                yield current, group
            current, group = item_id, []
        tag = tags.get(guideline_id, "") if guideline_id is not None else ""
        spent = None if seconds is None else round(seconds, 2)
        group.append(UserLabel(username, label or "", str(getattr(source, "value", source)), tag, spent))
    if current is not None:
        yield current, group


def _stream_predictions(session: Session, version: ModelVersion) -> Iterator[tuple[int, dict[str, Any]]]:
    for item_id, probabilities, confidence in stream_probabilities(session, version.id, batch=_BATCH):
        best = max(range(len(LABELS)), key=lambda i: probabilities[i])
        values = {f"p_{label}": round(p, 6) for label, p in zip(LABELS, probabilities, strict=True)}
        yield (
            item_id,
            {
                "model_version": version.id,
                **values,
                "predicted": LABELS[best],
                "confidence": round(confidence, 6),
            },
        )


def export_project(
    session: Session,
    project: Project,
    path: Path,
    *,
    file_format: str | None = None,
    with_predictions: bool = False,
    version_id: int | None = None,
    datasheet: Path | None = None,
    progress: Callable[[int], None] | None = None,
    by: Actor,
) -> ExportStats:
    """Write the export file (and the datasheet if a path is given); returns the counts. With predictions, the
    probabilities are version `version_id`'s (default: the current version's). `by` is the signed-in user, or
    OPERATOR for the command line."""
    require_role(by, RESEARCHERS, "export the corpus")
    if with_predictions:
        predictions_version(session, project, version_id)  # an unknown version fails before any file is made
    with no_gc_pauses():
        return _export_project(
            session, project, path, file_format, with_predictions, version_id, datasheet, progress
        )


def _export_project(
    session: Session,
    project: Project,
    path: Path,
    file_format: str | None,
    with_predictions: bool,
    version_id: int | None,
    datasheet: Path | None,
    progress: Callable[[int], None] | None,
) -> ExportStats:
    fmt = export_format(path, file_format)
    stats = ExportStats()
    columns = [*BASE_COLUMNS, *annotator_columns(annotator_names(session, project)), "meta"]
    if with_predictions:
        columns += PREDICTION_COLUMNS
    rows = iter_export_rows(
        session, project, with_predictions=with_predictions, version_id=version_id, stats=stats
    )
    if progress is not None:
        rows = _reporting(rows, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as partial:  # a crash never leaves a half-written export under the real name
        if fmt == "csv":
            with partial.open("w", encoding="utf-8", newline="") as handle:
                _write_csv(handle, columns, rows)
        elif fmt == "jsonl":
            with partial.open("w", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            _write_parquet(partial, columns, rows)
    if datasheet is not None:
        datasheet.write_text(
            render_datasheet(session, project, stats, export_name=path.name), encoding="utf-8"
        )
    return stats


def _reporting(rows: Iterator[dict[str, Any]], progress: Callable[[int], None]) -> Iterator[dict[str, Any]]:
    for count, row in enumerate(rows, start=1):
        if count % _BATCH == 0:
            progress(count)
        yield row


def _write_csv(handle: IO[str], columns: list[str], rows: Iterator[dict[str, Any]]) -> None:
    """CSV with formula-like cells neutralised (annotator/corpus/formulas.py); JSONL and Parquet keep text as it is."""
    writer = csv.writer(handle)
    writer.writerow(columns)
    writer.writerows([neutralise(row.get(column)) for column in columns] for row in rows)


def _write_parquet(path: Path, columns: list[str], rows: Iterator[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {
        "n_labels": pa.int64(),
        "flags": pa.int64(),
        "agreement": pa.float64(),
        "label_probability": pa.float64(),
        "is_control": pa.bool_(),
        "model_version": pa.int64(),
        "confidence": pa.float64(),
        **{f"p_{label}": pa.float64() for label in LABELS},
    }
    schema = pa.schema(
        [
            (name, pa.float64() if name.startswith("seconds__") else types.get(name, pa.string()))
            for name in columns
        ]
    )
    with pq.ParquetWriter(path, schema) as writer:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= _BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        writer.write_table(pa.Table.from_pylist(batch, schema=schema))
