"""Publishing a trained version, the same for every backend that trains on this worker (LoRA, encoder):
evaluate on the eval split, fit the temperature, write the eval and pool probabilities, mark the version ready
and choose the current version. A failed job's version is marked failed (mark_failed)."""

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
from sqlalchemy import delete, update
from sqlalchemy.orm import Session, sessionmaker

from core.calibration import apply_temperature, calibrate
from core.labels import LABELS
from core.metrics import evaluate_by_language
from db.engine import session_scope
from db.models import ModelStatus, ModelVersion, Prediction
from db.versions import LabelledPost, mark_ready, write_predictions
from trainer.config import WorkerSettings
from trainer.failpoints import failpoint
from trainer.pool_scoring import ScoreTexts, score_pool, throttled
from trainer.version_scorers import VersionSpec

Report = Callable[[float, str], None]
"""Called as (fraction done, message); raises to stop the job (cancelled, or the worker is stopping)."""


class NothingToTrain(Exception):
    """No labels were added since the parent version: there is nothing new to learn."""


def evaluate(
    score: ScoreTexts,
    eval_posts: list[LabelledPost],
    report: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    if not eval_posts:
        return {"note": "no labelled posts in the eval split"}, np.zeros((0, 4), dtype=np.float32)
    probabilities = score([p.text for p in eval_posts], report)
    predicted = [LABELS[i] for i in probabilities.argmax(axis=1)]
    metrics = evaluate_by_language([p.label for p in eval_posts], predicted, [p.language for p in eval_posts])
    return metrics, probabilities


def publish(
    sessions: sessionmaker[Session],
    settings: WorkerSettings,
    score: ScoreTexts,
    spec: VersionSpec,
    eval_posts: list[LabelledPost],
    report: Report,
    start: float,
    extra_metrics: dict[str, Any] | None = None,
) -> None:
    """Evaluate on the eval split, fit the version's temperature on half of it (core.calibration), score the pool
    with calibrated probabilities, then mark the version ready and choose the current version in one
    transaction."""
    started = time.perf_counter()
    scoring_start = start + (1 - start) * 0.1
    report(start, f"evaluating on {len(eval_posts)} eval posts")
    batch_report = throttled(report)
    metrics, eval_probabilities = evaluate(
        score,
        eval_posts,
        lambda done, total: batch_report(
            start + (scoring_start - start) * done / max(1, total),
            f"evaluated {done:,} of {total:,} eval posts",
        ),
    )
    temperature, calibration = calibrate(
        eval_probabilities,
        [LABELS.index(p.label) for p in eval_posts],
        [p.language for p in eval_posts],
        [p.item_id for p in eval_posts],
    )
    spec = replace(spec, temperature=temperature)  # every probability this version writes is calibrated
    with session_scope(sessions) as session:
        record = session.get(ModelVersion, spec.id)
        assert record is not None
        record.metrics = metrics | {"calibration": calibration} | (extra_metrics or {})
        # Kept so that findings can correct counts with this version's errors (annotator.reports.findings).
        write_predictions(
            session,
            spec.id,
            [p.item_id for p in eval_posts],
            apply_temperature(eval_probabilities, temperature),
        )
    report(scoring_start, "scoring the pool")
    scored = score_pool(sessions, settings, score, spec, report, scoring_start, 0.98)
    failpoint("before-ready")  # scored, not yet ready
    with session_scope(sessions) as session:
        record = session.get(ModelVersion, spec.id)
        assert record is not None
        record.metrics = record.metrics | {
            "scoring": {"posts": scored, "seconds": round(time.perf_counter() - started, 1)}
        }
        mark_ready(session, record)


def mark_failed(sessions: sessionmaker[Session], version_id: int, error: str) -> None:
    """The version is failed and its partial predictions removed; the current version is untouched."""
    with session_scope(sessions) as session:
        session.execute(delete(Prediction).where(Prediction.model_version_id == version_id))
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.id == version_id)
            .values(status=ModelStatus.FAILED, error=error[-5000:], is_current=False)
        )
