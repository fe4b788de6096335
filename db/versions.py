"""Model versions as both sides of the database see them: the labelled posts a version learns from and is
evaluated on, its predictions, and which ready version is current. The worker (LoRA) and the fast model
(annotator/) write versions through these functions, so both follow the same rules."""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from core.labels import LABELS
from core.metrics import PairedDifference, VersionMetrics, paired_macro_f1
from db.bulk import bulk_insert, refresh_statistics
from db.consensus import RELIABILITY, project_consensus
from db.models import (
    PROBABILITY_COLUMNS,
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
    weight: float = 1.0
    """How much the post counts in training: the reliability model's probability of its label; 1.0 for an
    adjudication, a control, and under majority vote (which trains as it always did)."""


def consensus_posts(session: Session, project_id: int, split: Split) -> list[LabelledPost]:
    """Posts of a split with their consensus label (db.consensus: adjudicated, else a control's gold label, else
    the reliability model's or the majority's label; ties left out), in id order. Posts a researcher excluded
    after a flag are left out; a post relabelled after a flag counts with its adjudicated label even when no
    annotator labelled it."""
    excluded = set(
        session.scalars(
            select(FlagReview.item_id)
            .join(Item, Item.id == FlagReview.item_id)
            .where(Item.project_id == project_id, FlagReview.decision == FlagDecision.EXCLUDED)
        )
    )
    decided = {
        item_id: found
        for item_id, found in project_consensus(session, project_id, split).items()
        if found.label is not None and item_id not in excluded
    }
    ids = list(decided)
    details: dict[int, tuple[str, str]] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(Item.id, Item.text, Item.language).where(Item.id.in_(ids[start : start + _CHUNK]))
        )
        details.update({item_id: (text, language) for item_id, text, language in rows})
    posts = []
    for item_id, found in decided.items():
        assert found.label is not None  # filtered above; this tells the type checker
        text, language = details[item_id]
        reliable = found.source == RELIABILITY and found.probability is not None
        weight = min(1.0, max(0.0, found.probability or 0.0)) if reliable else 1.0
        posts.append(LabelledPost(item_id, text, language, found.label, weight))
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


def pool_size(session: Session, project_id: int) -> int:
    return int(
        session.scalar(select(func.count()).where(Item.project_id == project_id, Item.split == Split.POOL))
        or 0
    )


def pool_page(session: Session, project_id: int, after_id: int, limit: int) -> list[tuple[int, str]]:
    """(id, text) of the next `limit` pool posts after `after_id`, in id order (keyset paging: the pool is never
    held whole)."""
    return [
        (item_id, text)
        for item_id, text in session.execute(
            select(Item.id, Item.text)
            .where(Item.project_id == project_id, Item.split == Split.POOL, Item.id > after_id)
            .order_by(Item.id)
            .limit(limit)
        )
    ]


def pool_ranges(session: Session, project_id: int, size: int) -> Iterator[tuple[int, int]]:
    """The pool cut into id ranges (after, last] of `size` posts each, from a stream of ids only."""
    after, count, last = 0, 0, 0
    for item_id in session.scalars(
        select(Item.id)
        .where(Item.project_id == project_id, Item.split == Split.POOL)
        .order_by(Item.id)
        .execution_options(yield_per=10_000)
    ):
        count, last = count + 1, item_id
        if count == size:
            yield after, last
            after, count = last, 0
    if count:
        yield after, last


def pool_range(session: Session, project_id: int, after_id: int, last_id: int) -> list[tuple[int, str]]:
    """(id, text) of the pool posts with after_id < id <= last_id."""
    return [
        (item_id, text)
        for item_id, text in session.execute(
            select(Item.id, Item.text)
            .where(
                Item.project_id == project_id,
                Item.split == Split.POOL,
                Item.id > after_id,
                Item.id <= last_id,
            )
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


class VersionNotReady(Exception):
    """A model version that cannot be used as a ready version of a project. The message says why ("Model version 7
    is training, not ready"); each caller adds what to do about it, in its own error type."""

    def __init__(self, version_id: int, version: ModelVersion | None) -> None:
        self.version_id = version_id
        self.version = version
        """The version as found; None when the project has no version of that id."""
        state = "is not a version of this project" if version is None else f"is {version.status}, not ready"
        super().__init__(f"Model version {version_id} {state}")


def require_ready(version: ModelVersion) -> ModelVersion:
    """The version itself when it is ready (it has predictions and can score); else VersionNotReady."""
    if version.status != ModelStatus.READY:
        raise VersionNotReady(version.id, version)
    return version


def ready_version(session: Session, project_id: int, version_id: int | None) -> ModelVersion | None:
    """The ready version `version_id` of the project, or, given None, the project's current version (None when
    it has none yet). A version of another project, or one that is not ready, raises VersionNotReady."""
    if version_id is None:
        return current_version(session, project_id)
    version = session.get(ModelVersion, version_id)
    if version is None or version.project_id != project_id:
        raise VersionNotReady(version_id, None)
    return require_ready(version)


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


def stored_folder(project_id: int, version_id: int) -> str:
    """What a version's adapter_path column holds for its files: their folder relative to the data folder, so a
    moved data folder or a restored backup on another machine still finds them (version_folder)."""
    return f"adapters/project-{project_id}/version-{version_id}"


def adapter_folder(data_dir: Path, project_id: int, version_id: int) -> Path:
    """Where a version's files live (LoRA adapter, encoder members, fast head): the writers save them there, an
    imported adapter is copied there, restore puts them back there."""
    return data_dir / stored_folder(project_id, version_id)


def resolve_folder(data_dir: Path, project_id: int, version_id: int, stored: str | None) -> Path | None:
    """The folder of a version's files on this machine, from its adapter_path column; None where it has none (an
    ensemble, a version still training). A relative path is under the data folder. Rows written before paths were
    relative hold absolute ones: used where they still exist, else the version's folder under the current data
    folder (the data folder was moved, or the project restored elsewhere)."""
    if not stored:
        return None
    path = Path(stored)
    if not path.is_absolute():
        return data_dir / path
    if path.exists():
        return path
    return adapter_folder(data_dir, project_id, version_id)


def version_folder(data_dir: Path, version: ModelVersion) -> Path | None:
    """resolve_folder for a version row: where its files are, or None where it has none."""
    return resolve_folder(data_dir, version.project_id, version.id, version.adapter_path)


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


@dataclass(frozen=True)
class CurrentChoice:
    version: ModelVersion
    reason: str
    """Why this version is current, in words a researcher reads on the Models page."""


def _score(version: ModelVersion) -> tuple[float | None, float | None, float | None]:
    overall = VersionMetrics.of(version.metrics).overall
    if overall is None or overall.macro_f1 is None:
        return None, None, None
    low, high = overall.interval if overall.interval else (None, None)
    return float(overall.macro_f1), low, high


Comparer = Callable[[ModelVersion, ModelVersion], PairedDifference | None]
"""A second version's eval macro-F1 minus a first's on the eval posts both scored (paired_comparer), or None where
they share none."""


def choose_current(ready: Sequence[ModelVersion], compare: Comparer | None = None) -> CurrentChoice | None:
    """The version to make current, with the noise of small eval splits in mind: a pinned version; else the
    newest evaluated version, unless an older one is better beyond the noise: by a paired bootstrap on the eval
    posts both scored (`compare`: its 95% interval of the difference above 0), or, where no comparison is
    possible, its own 95% interval's lower bound above the newest's macro-F1; else, where nothing is evaluated,
    the newest ready version."""
    if not ready:
        return None
    pinned = [v for v in ready if v.pinned]
    if pinned:
        chosen = max(pinned, key=lambda v: v.id)
        return CurrentChoice(chosen, f"version {chosen.id} is pinned by a researcher")
    evaluated = [v for v in ready if _score(v)[0] is not None]
    if not evaluated:
        newest = max(ready, key=lambda v: v.id)
        return CurrentChoice(
            newest, "the newest ready version (no version has been evaluated on an eval split)"
        )
    newest = max(evaluated, key=lambda v: v.id)
    newest_f1 = _score(newest)[0]
    assert newest_f1 is not None
    higher = [v for v in evaluated if v is not newest and (_score(v)[0] or 0.0) > newest_f1]
    paired = {v.id: compare(newest, v) if compare is not None else None for v in higher}
    better = [v for v in higher if _beats(v, paired[v.id], newest_f1)]
    if better:
        best = max(better, key=lambda v: (_score(v)[0] or 0.0, v.id))
        return CurrentChoice(best, _why_better(best, newest, paired[best.id], newest_f1))
    return CurrentChoice(
        newest,
        "the newest evaluated version"
        + (
            f"; version(s) {', '.join(str(v.id) for v in higher)} score higher on the eval split, but not beyond "
            "the noise (a paired comparison on the same eval posts, else their 95% intervals), so the version "
            "trained on more labels is preferred"
            if higher
            else ""
        ),
    )


def _beats(version: ModelVersion, paired: PairedDifference | None, newest_f1: float) -> bool:
    if paired is not None:
        return paired.low > 0
    low = _score(version)[1]
    return low is not None and low > newest_f1


def _why_better(
    best: ModelVersion, newest: ModelVersion, paired: PairedDifference | None, newest_f1: float
) -> str:
    f1, low, high = _score(best)
    if paired is not None:
        return (
            f"on the {paired.posts} eval posts both scored, its macro-F1 is higher than the newest evaluated "
            f"version {newest.id}'s by {paired.difference:+.3f} (paired 95% interval {paired.low:+.3f} to "
            f"{paired.high:+.3f}): beyond the noise"
        )
    return (
        f"its eval macro-F1 {f1:.3f} (95% interval {low:.3f}-{high:.3f}) beats the newest evaluated version "
        f"{newest.id} ({newest_f1:.3f}) beyond its interval"
    )


def paired_comparer(session: Session, project_id: int) -> Comparer:
    """Compare two versions on the project's labelled eval posts that both scored (their stored eval
    predictions: an ensemble's are cross-fitted), with core.metrics.paired_macro_f1; the labels are read once."""
    gold: dict[int, int] | None = None

    def compare(first: ModelVersion, second: ModelVersion) -> PairedDifference | None:
        nonlocal gold
        if gold is None:
            gold = {
                p.item_id: LABELS.index(p.label) for p in consensus_posts(session, project_id, Split.EVAL)
            }
        a, b = (
            probabilities_of(session, first.id, list(gold)),
            probabilities_of(session, second.id, list(gold)),
        )
        shared = [i for i in gold if i in a and i in b]
        if not shared:
            return None
        return paired_macro_f1(
            np.array([gold[i] for i in shared], dtype=np.int64),
            np.argmax([a[i] for i in shared], axis=1),
            np.argmax([b[i] for i in shared], axis=1),
            len(LABELS),
        )

    return compare


def ready_versions(session: Session, project_id: int) -> list[ModelVersion]:
    return list(
        session.scalars(
            select(ModelVersion).where(
                ModelVersion.project_id == project_id, ModelVersion.status == ModelStatus.READY
            )
        )
    )


def standing(session: Session, version_id: int) -> str:
    """' (current)', or why another version is current: for the message a finished job leaves."""
    version = session.get(ModelVersion, version_id)
    if version is None or version.is_current:
        return " (current)" if version is not None else ""
    choice = choose_current(
        ready_versions(session, version.project_id), paired_comparer(session, version.project_id)
    )
    if choice is None:
        return ""
    f1 = _score(version)[0]
    score = f" (eval macro-F1 {f1:.3f})" if f1 is not None else ""
    return f"{score}, not current: version {choice.version.id} stays current, {choice.reason}"


def select_current(session: Session, project_id: int) -> ModelVersion | None:
    """Make choose_current's version current (at most one per project)."""
    choice = choose_current(ready_versions(session, project_id), paired_comparer(session, project_id))
    if choice is None:
        return None
    session.execute(
        update(ModelVersion)
        .where(ModelVersion.project_id == project_id, ModelVersion.is_current)
        .values(is_current=False)
    )
    session.flush()
    choice.version.is_current = True
    session.flush()
    return choice.version


def write_predictions(
    session: Session, version_id: int, item_ids: Sequence[int], probabilities: NDArray[np.floating]
) -> None:
    """One predictions row per post (COPY on PostgreSQL), with the uncertainty scores the sampler indexes."""
    rows = [
        prediction_row(version_id, item_id, p) for item_id, p in zip(item_ids, probabilities, strict=True)
    ]
    bulk_insert(session, Prediction.__table__, rows)  # type: ignore[arg-type]


def replace_predictions(
    session: Session, version_id: int, item_ids: Sequence[int], probabilities: NDArray[np.floating]
) -> None:
    """write_predictions that can be repeated: a retried page (a scoring process lost mid-way) replaces its own
    rows, so each post has one prediction per version."""
    session.execute(
        delete(Prediction).where(
            Prediction.model_version_id == version_id, Prediction.item_id.in_(list(item_ids))
        )
    )
    write_predictions(session, version_id, item_ids, probabilities)


def mark_ready(session: Session, version: ModelVersion) -> ModelVersion | None:
    """The version's predictions are complete: it becomes ready, and current if choose_current picks it. Returns the
    current version."""
    refresh_statistics(session, "predictions")
    version.status = ModelStatus.READY
    session.flush()
    return select_current(session, version.project_id)
