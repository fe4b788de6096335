"""The ensemble version: the calibrated probabilities of the newest ready version of each backend (fast, LoRA,
encoder) averaged (`pool`: the mean; their normalised geometric mean measured no better, docs/experiment.md),
published as a version of its own (backend `ensemble`) that the sampler, the app, the findings and the exports use like any
other.

It needs no model: every version keeps its probabilities for the pool and the eval posts, so the ensemble is
built from those rows, in pages of posts. It is evaluated per language on the eval posts, gets its own
temperature (core.calibration), and becomes current when db.versions.choose_current picks it. Built after every
retrain (the worker's and the fast model's) once two backends have a ready version; to classify an archive, its
members are loaded and pooled by the version's rule (trainer/version_scorers.py).

The members never saw the eval posts, so neither did their pool: its eval scores are as honest as theirs."""

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.calibration import apply_temperature
from core.labels import LABELS
from core.pooling import POOLING, pool
from db.engine import session_scope
from db.models import Backend, ModelStatus, ModelVersion, Prediction, Split
from db.publish import in_session, publish_version
from db.snapshots import TrainingSnapshot, snapshot_json
from db.versions import (
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


def _snapshot(ids: list[int], members: Sequence[TrainingSnapshot]) -> dict[str, Any]:
    """An ensemble's snapshot: its members, every label one of them learnt, the most posts one trained on."""
    return snapshot_json(
        members=ids,
        labels={k: v for m in members for k, v in (m.labels or {}).items()},
        trained_on=max(m.trained_on or 0 for m in members),
        pooling=POOLING,
    )


def pooled(
    session: Session, members: Sequence[int], item_ids: Sequence[int], rule: str = POOLING
) -> dict[int, NDArray[np.float64]]:
    """The members' pooled probabilities for each post that at least one member scored (a post imported after a
    member was trained is pooled over the members that scored it)."""
    rows: dict[int, list[NDArray[np.float64]]] = {}
    for member in members:
        for item_id, probabilities in probabilities_of(session, member, item_ids).items():
            rows.setdefault(item_id, []).append(np.asarray(probabilities, dtype=np.float64))
    return {item_id: pool(found, rule) for item_id, found in rows.items()}


def build_ensemble(session: Session, project_id: int) -> ModelVersion | None:
    """Publish the ensemble of the newest version of each backend, or None when fewer than two backends have a
    ready version or the newest ensemble already has these members. Runs in the caller's transaction."""
    members = ensemble_members(session, project_id)
    if len(members) < 2:
        return None
    ids = sorted(v.id for v in members)
    newest = latest_ready_version(session, project_id, Backend.ENSEMBLE)
    if newest is not None and sorted(member_ids(newest)) == ids:
        return None
    version = ModelVersion(
        project_id=project_id,
        backend=Backend.ENSEMBLE,
        base_model="average of versions " + ", ".join(f"{v.id} ({v.backend})" for v in members),
        status=ModelStatus.SCORING,
        training_snapshot=_snapshot(ids, [TrainingSnapshot.of(m.training_snapshot) for m in members]),
    )
    session.add(version)
    session.flush()
    eval_posts = consensus_posts(session, project_id, Split.EVAL)
    by_item = pooled(session, ids, [p.item_id for p in eval_posts])
    scored = [p for p in eval_posts if p.item_id in by_item]
    publish_version(
        in_session(session),
        version.id,
        scored,
        np.array([by_item[p.item_id] for p in scored]).reshape(-1, len(LABELS)),
        lambda temperature: _write_rest(session, version.id, ids, temperature, {p.item_id for p in scored}),
        extra_metrics={"members": ids},
    )
    return version


def _write_rest(
    session: Session, version_id: int, members: Sequence[int], temperature: float, written: set[int]
) -> dict[str, Any]:
    """Every other post any member scored (the pool, and eval posts without a consensus label), pooled and
    calibrated, page by page in item id order; `written` are the eval posts publish_version wrote."""
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
            by_item = pooled(session, members, page)
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
