"""Model versions as both sides of the database see them: the labelled posts a version learns from and is
evaluated on, its predictions, and which ready version is current. The worker (LoRA) and the fast model
(annotator/) write versions through these functions, so both follow the same rules."""

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.bulk import bulk_insert, refresh_statistics
from db.labels import consensus
from db.metrics import VersionMetrics
from db.models import (
    PROBABILITY_COLUMNS,
    Adjudication,
    Annotation,
    AnnotationKind,
    Backend,
    FlagDecision,
    FlagReview,
    Item,
    ModelStatus,
    ModelVersion,
    Prediction,
    Split,
    prediction_row,
)


@dataclass(frozen=True)
class LabelledPost:
    item_id: int
    text: str
    language: str
    label: str


def consensus_posts(session: Session, project_id: int, split: Split) -> list[LabelledPost]:
    """Posts of a split with their consensus label (adjudicated, else majority; ties left out). Posts a
    researcher excluded after a flag are left out; a post relabelled after a flag counts with its adjudicated
    label even when no annotator labelled it."""
    excluded = select(FlagReview.item_id).where(FlagReview.decision == FlagDecision.EXCLUDED)
    rows = session.execute(
        select(Item.id, Item.text, Item.language, Annotation.label)
        .join(Annotation, Annotation.item_id == Item.id)
        .where(
            Item.project_id == project_id,
            Item.split == split,
            Annotation.kind == AnnotationKind.LABEL,
            Item.id.not_in(excluded),
        )
        .order_by(Item.id)
    ).all()
    adjudicated = session.execute(
        select(Adjudication.item_id, Item.text, Item.language, Adjudication.label)
        .join(Item, Item.id == Adjudication.item_id)
        .where(Item.project_id == project_id, Item.split == split, Item.id.not_in(excluded))
    ).all()
    labels: dict[int, list[str]] = defaultdict(list)
    details: dict[int, tuple[str, str]] = {}
    for item_id, text, language, label in rows:
        if label is not None:  # the kind's CHECK constraint guarantees it; this tells the type checker
            labels[item_id].append(label)
        details[item_id] = (text, language)
    decided: dict[int, str] = {}
    for item_id, text, language, label in adjudicated:
        decided[item_id] = label
        details[item_id] = (text, language)
        labels.setdefault(item_id, [])
    posts = []
    for item_id in sorted(labels):
        chosen = consensus(labels[item_id], decided.get(item_id)).label
        if chosen is not None:
            text, language = details[item_id]
            posts.append(LabelledPost(item_id, text, language, chosen))
    return posts


def pool_posts(session: Session, project_id: int) -> list[tuple[int, str]]:
    """(id, text) of every pool post, in id order: what a new version scores (fast model and LoRA alike)."""
    return [
        (item_id, text)
        for item_id, text in session.execute(
            select(Item.id, Item.text)
            .where(Item.project_id == project_id, Item.split == Split.POOL)
            .order_by(Item.id)
        )
    ]


def current_version(session: Session, project_id: int) -> ModelVersion | None:
    """The project's current version: the one the sampler, the app's suggestions, exports and Label Studio use.
    Only a ready version is ever current (select_current); the status check keeps it so whatever happens."""
    return session.scalar(
        select(ModelVersion).where(
            ModelVersion.project_id == project_id,
            ModelVersion.is_current.is_(True),
            ModelVersion.status == ModelStatus.READY,
        )
    )


Probabilities = tuple[float, float, float, float]
_CHUNK = 5_000
"""Item ids per IN (...) list: far below SQLite's and PostgreSQL's bound-parameter limits."""


def probabilities_of(session: Session, version_id: int, item_ids: Sequence[int]) -> dict[int, Probabilities]:
    """A version's probabilities (LABELS order) for the given posts that it scored."""
    found: dict[int, Probabilities] = {}
    ids = list(item_ids)
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(Prediction.item_id, *PROBABILITY_COLUMNS).where(
                Prediction.model_version_id == version_id, Prediction.item_id.in_(ids[start : start + _CHUNK])
            )
        )
        found.update({item_id: (a, b, c, d) for item_id, a, b, c, d in rows})
    return found


def stream_probabilities(
    session: Session, version_id: int, *, batch: int = 10_000
) -> Iterator[tuple[int, Probabilities, float]]:
    """(item id, probabilities, confidence) of every post the version scored, in item id order, read in batches
    (memory does not grow with the pool)."""
    result = session.execute(
        select(Prediction.item_id, *PROBABILITY_COLUMNS, Prediction.confidence)
        .where(Prediction.model_version_id == version_id)
        .order_by(Prediction.item_id)
        .execution_options(yield_per=batch)
    )
    for item_id, a, b, c, d, confidence in result:
        yield item_id, (a, b, c, d), confidence


def adapter_folder(data_dir: Path, project_id: int, version_id: int) -> Path:
    """Where a LoRA version's adapter lives: the worker writes it there, an imported adapter is copied there."""
    return data_dir / "adapters" / f"project-{project_id}" / f"version-{version_id}"


def latest_ready_version(session: Session, project_id: int, backend: Backend) -> ModelVersion | None:
    """The newest ready version of one backend: the parent an incremental round of that backend resumes."""
    return session.scalar(
        select(ModelVersion)
        .where(
            ModelVersion.project_id == project_id,
            ModelVersion.backend == backend,
            ModelVersion.status == ModelStatus.READY,
        )
        .order_by(ModelVersion.id.desc())
        .limit(1)
    )


def select_current(session: Session, project_id: int) -> ModelVersion | None:
    """Make the pinned ready version current, else the ready one with the best eval macro-F1 (newest on ties
    and where no version has been evaluated)."""
    ready = session.scalars(
        select(ModelVersion).where(
            ModelVersion.project_id == project_id, ModelVersion.status == ModelStatus.READY
        )
    ).all()
    if not ready:
        return None
    pinned = [v for v in ready if v.pinned]

    def score(version: ModelVersion) -> tuple[float, int]:
        value = VersionMetrics.of(version.metrics).macro_f1
        return (-1.0 if value is None else float(value), version.id)

    best = pinned[-1] if pinned else max(ready, key=score)
    session.execute(
        update(ModelVersion)
        .where(ModelVersion.project_id == project_id, ModelVersion.is_current)
        .values(is_current=False)
    )
    session.flush()
    best.is_current = True
    session.flush()
    return best


def write_predictions(
    session: Session, version_id: int, item_ids: Sequence[int], probabilities: NDArray[np.floating]
) -> None:
    """One predictions row per post (COPY on PostgreSQL), with the uncertainty scores the sampler indexes."""
    rows = [
        prediction_row(version_id, item_id, p) for item_id, p in zip(item_ids, probabilities, strict=True)
    ]
    bulk_insert(session, Prediction.__table__, rows)  # type: ignore[arg-type]


def mark_ready(session: Session, version: ModelVersion) -> ModelVersion | None:
    """The version's predictions are complete: it becomes ready, and current if it is the best. Returns the
    current version."""
    refresh_statistics(session, "predictions")
    version.status = ModelStatus.READY
    session.flush()
    return select_current(session, version.project_id)
