"""The ensemble version: the calibrated probabilities of the newest ready version of each backend (fast, LoRA,
encoder) averaged with weights by language (core.ensemble_weights: the members other than the fast model by
default, and where a language has eval labels, the weights fitted on them, shrunk toward that default),
published as a version of its own (backend `ensemble`) that the sampler, the app, the findings and the exports use like any
other.

It needs no model: every version keeps its probabilities for the pool and the eval posts, so the ensemble is
built from those rows, in pages of posts. It is evaluated per language on the eval posts, gets its own
temperature (core.calibration), and becomes current when db.versions.choose_current picks it. Built after every
retrain (the worker's and the fast model's) once two backends have a ready version; to classify an archive, its
members are loaded and pooled by the version's rule (trainer/version_scorers.py).

The members never saw the eval posts; the weights did, so the ensemble's own eval probabilities are cross-fitted
(each post pooled with weights fitted without it): its eval scores stay as honest as its members'."""

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.calibration import apply_temperature
from core.ensemble_weights import BY_LANGUAGE, LanguageWeights, cross_fitted, fit_language_weights
from core.labels import LABELS
from db.engine import session_scope
from db.models import Backend, Item, ModelStatus, ModelVersion, Prediction, Split
from db.publish import in_session, publish_version
from db.snapshots import TrainingSnapshot, snapshot_json
from db.versions import (
    LabelledPost,
    Probabilities,
    consensus_posts,
    latest_ready_version,
    probabilities_of,
    standing,
    write_predictions,
)

MEMBER_BACKENDS = (Backend.FAST, Backend.LORA, Backend.ENCODER)
PAGE = 5_000
"""Posts averaged and written at a time."""


def ensemble_members(session: Session, project_id: int) -> list[ModelVersion]:
    """The newest ready version of each backend that has one."""
    found = [latest_ready_version(session, project_id, backend) for backend in MEMBER_BACKENDS]
    return [version for version in found if version is not None]


def member_ids(version: ModelVersion) -> list[int]:
    return TrainingSnapshot.of(version.training_snapshot).members


def pooling_of(version: ModelVersion) -> str:
    """The rule an ensemble version was built with (versions built before the rule was recorded averaged)."""
    return TrainingSnapshot.of(version.training_snapshot).pooling


def weights_of(version: ModelVersion) -> LanguageWeights | None:
    """An ensemble's weights by language (core.ensemble_weights), or None for one built before them (it pools by
    `pooling_of`'s rule)."""
    return TrainingSnapshot.of(version.training_snapshot).language_weights


def _snapshot(
    ids: list[int], members: Sequence[TrainingSnapshot], weights: LanguageWeights
) -> dict[str, Any]:
    """An ensemble's snapshot: its members, every label one of them learnt, the most posts one trained on, its
    weights by language."""
    return snapshot_json(
        members=ids,
        labels={k: v for m in members for k, v in (m.labels or {}).items()},
        trained_on=max(m.trained_on or 0 for m in members),
        pooling=BY_LANGUAGE,
        weights=weights.to_json(),
    )


def member_rows(
    session: Session, members: Sequence[int], item_ids: Sequence[int]
) -> dict[int, list[Probabilities | None]]:
    """For each post that at least one member scored, each member's probabilities (None where it did not: a post
    imported after it was trained), in member order."""
    by_member = [probabilities_of(session, member, item_ids) for member in members]
    found = {item_id for rows in by_member for item_id in rows}
    return {item_id: [rows.get(item_id) for rows in by_member] for item_id in item_ids if item_id in found}


def _pooled(
    weights: LanguageWeights, rows: dict[int, list[Probabilities | None]], languages: dict[int, str]
) -> dict[int, NDArray[np.float64]]:
    return {
        item_id: weights.pool_present(
            [None if r is None else np.asarray(r, dtype=np.float64) for r in found], languages.get(item_id)
        )
        for item_id, found in rows.items()
    }


def fit_weights(
    members: Sequence[ModelVersion],
    eval_posts: Sequence[LabelledPost],
    rows: dict[int, list[Probabilities | None]],
) -> tuple[LanguageWeights, list[LabelledPost], NDArray[np.float64]]:
    """The members' weights by language, fitted on the eval posts every member scored, and those posts with their
    cross-fitted pooled probabilities (core.ensemble_weights.cross_fitted: no post is pooled with weights fitted
    on itself)."""
    backends = [str(m.backend) for m in members]
    complete = [p for p in eval_posts if all(r is not None for r in rows.get(p.item_id, [None]))]
    arrays = [
        np.array([rows[p.item_id][i] for p in complete], dtype=np.float64).reshape(-1, len(LABELS))
        for i in range(len(members))
    ]
    gold = [LABELS.index(p.label) for p in complete]
    languages = [p.language for p in complete]
    weights = fit_language_weights(arrays, gold, languages, backends)
    return weights, complete, cross_fitted(arrays, gold, languages, backends)


def build_ensemble(session: Session, project_id: int) -> ModelVersion | None:
    """Publish the ensemble of the newest version of each backend, or None when fewer than two backends have a
    ready version or the newest ensemble already has these members. Runs in the caller's transaction."""
    members = sorted(ensemble_members(session, project_id), key=lambda v: v.id)
    if len(members) < 2:
        return None
    ids = [v.id for v in members]
    newest = latest_ready_version(session, project_id, Backend.ENSEMBLE)
    if newest is not None and sorted(member_ids(newest)) == ids:
        return None
    eval_posts = consensus_posts(session, project_id, Split.EVAL)
    rows = member_rows(session, ids, [p.item_id for p in eval_posts])
    weights, complete, cross = fit_weights(members, eval_posts, rows)
    version = ModelVersion(
        project_id=project_id,
        backend=Backend.ENSEMBLE,
        base_model="weighted by language: versions " + ", ".join(f"{v.id} ({v.backend})" for v in members),
        status=ModelStatus.SCORING,
        training_snapshot=_snapshot(
            ids, [TrainingSnapshot.of(m.training_snapshot) for m in members], weights
        ),
    )
    session.add(version)
    session.flush()
    done = {p.item_id for p in complete}
    partial = [p for p in eval_posts if p.item_id in rows and p.item_id not in done]
    rest = _pooled(
        weights, {p.item_id: rows[p.item_id] for p in partial}, {p.item_id: p.language for p in partial}
    )
    scored = [*complete, *partial]
    probabilities = np.concatenate(
        [cross, np.array([rest[p.item_id] for p in partial]).reshape(-1, len(LABELS))]
    )
    publish_version(
        in_session(session),
        version.id,
        scored,
        probabilities,
        lambda temperature: _write_rest(
            session, version.id, ids, weights, temperature, {p.item_id for p in scored}
        ),
        extra_metrics={"members": ids},
    )
    return version


def _write_rest(
    session: Session,
    version_id: int,
    members: Sequence[int],
    weights: LanguageWeights,
    temperature: float,
    written: set[int],
) -> dict[str, Any]:
    """Every other post any member scored (the pool, and eval posts without a consensus label), pooled by its
    language's weights and calibrated, page by page in item id order; `written` are the eval posts
    publish_version wrote."""
    after = 0
    while True:
        page = list(
            session.scalars(
                select(Prediction.item_id)
                .where(Prediction.model_version_id.in_(list(members)), Prediction.item_id > after)
                .group_by(Prediction.item_id)
                .order_by(Prediction.item_id)
                .limit(PAGE)
            )
        )
        if not page:
            return {}
        after = page[-1]
        page = [i for i in page if i not in written]
        if page:
            rows = session.execute(select(Item.id, Item.language).where(Item.id.in_(page)))
            languages = {item_id: language for item_id, language in rows}
            by_item = _pooled(weights, member_rows(session, members, page), languages)
            write_predictions(
                session,
                version_id,
                page,
                apply_temperature(np.array([by_item[i] for i in page]), temperature),
            )


def refresh_ensemble(sessions: sessionmaker[Session], project_id: int) -> str:
    """build_ensemble in a transaction of its own, after a version was published; returns what it did, for the
    job's message. A failure here leaves the published version as it is (and is said, not raised)."""
    try:
        with session_scope(sessions) as session:
            version = build_ensemble(session, project_id)
            if version is None:
                return ""
            return f"; ensemble version {version.id} ready{standing(session, version.id)}"
    except Exception as error:
        return f"; no ensemble version: {type(error).__name__}: {error}"
