"""Publishing a model version, one step for every backend (the worker's LoRA and encoder, the web side's fast
model, the ensemble built from stored rows): evaluate its eval probabilities per language, fit its temperature
(core.calibration), write the calibrated eval probabilities, have the pool's written, record the metrics, and mark
it ready (current if db.versions.choose_current picks it)."""

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from core.calibration import apply_temperature, calibrate
from core.labels import LABELS
from core.metrics import evaluate_by_language
from db.models import ModelVersion
from db.versions import LabelledPost, mark_ready, write_predictions

Transaction = Callable[[], AbstractContextManager[Session]]
"""Opens the session one step of publishing writes in: a transaction of its own (`lambda: session_scope(sessions)`:
what is written before the pool is committed before the pool is scored), or `in_session(session)` when the
whole publish is the caller's one transaction."""

WritePool = Callable[[float], dict[str, Any]]
"""Writes the pool's probabilities scaled with the temperature it is given (its own way: the worker scores the
pool with its model, the fast model writes what it computed with the eval posts', the ensemble pools its members'
rows); returns what to add
to the version's metrics about it (e.g. posts scored and seconds)."""

NO_EVAL_POSTS = {"note": "no labelled posts in the eval split"}


def in_session(session: Session) -> Transaction:
    """Every step in the caller's session and transaction (nothing committed here)."""
    return lambda: nullcontext(session)


def evaluation(eval_posts: Sequence[LabelledPost], probabilities: NDArray[np.floating]) -> dict[str, Any]:
    """Per-language metrics of the (len(eval_posts), 4) probabilities' top labels (core.metrics), or a note
    when there are no eval posts."""
    if not eval_posts:
        return dict(NO_EVAL_POSTS)
    predicted = [LABELS[i] for i in probabilities.argmax(axis=1)]
    return evaluate_by_language([p.label for p in eval_posts], predicted, [p.language for p in eval_posts])


def publish_version(
    transaction: Transaction,
    version_id: int,
    eval_posts: Sequence[LabelledPost],
    eval_probabilities: NDArray[np.floating],
    write_pool: WritePool,
    *,
    extra_metrics: dict[str, Any] | None = None,
    say: Callable[[str], None] | None = None,
) -> float:
    """Publish the version from its raw (uncalibrated) probabilities of the eval posts, (len(eval_posts), 4) in
    LABELS order: evaluate them, fit the temperature on half of them, record the metrics (with `extra_metrics`)
    and the calibrated eval probabilities, write the pool (`say` is told first), then add what the pool's writing
    recorded and mark the version ready, in a last transaction. Returns the temperature.

    A failure leaves the version unready; with transactions of their own, the caller marks it failed (its eval
    rows are committed by then)."""
    raw = np.asarray(eval_probabilities).reshape(-1, len(LABELS))  # also when there are no eval posts
    metrics = evaluation(eval_posts, raw)
    temperature, calibration = calibrate(
        raw,
        [LABELS.index(p.label) for p in eval_posts],
        [p.language for p in eval_posts],
        [p.item_id for p in eval_posts],
    )
    with transaction() as session:
        version = _version(session, version_id)
        version.metrics = metrics | {"calibration": calibration} | (extra_metrics or {})
        # Kept so that findings can correct counts with this version's errors (annotator.reports.findings).
        write_predictions(
            session,
            version_id,
            [p.item_id for p in eval_posts],
            apply_temperature(raw, temperature),
        )
    if say is not None:
        say("scoring the pool")
    pool_metrics = write_pool(temperature)
    with transaction() as session:
        version = _version(session, version_id)
        version.metrics = version.metrics | pool_metrics
        mark_ready(session, version)
    return temperature


def _version(session: Session, version_id: int) -> ModelVersion:
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise ValueError(f"model version {version_id} is gone")
    return version
