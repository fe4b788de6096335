"""Publishing a trained version on this worker (LoRA, encoder): the model scores the eval split and the pool, and
db.publish.publish_version (the one publish step of every backend) evaluates, calibrates, writes and marks it ready.
A failed job's version is marked failed (mark_failed)."""

import time
from dataclasses import replace
from typing import Any

import numpy as np
from sqlalchemy import delete, update
from sqlalchemy.orm import Session, sessionmaker

from core.labels import LABELS
from core.progress import Pace
from core.progress import Report as Report  # re-exported for the trainers
from db.engine import session_scope
from db.models import ModelStatus, ModelVersion, Prediction
from db.publish import publish_version
from db.versions import LabelledPost
from trainer.config import WorkerSettings
from trainer.failpoints import failpoint
from trainer.pool_scoring import ScoreTexts, score_pool, throttled
from trainer.version_scorers import VersionSpec


class NothingToTrain(Exception):
    """No labels were added since the parent version: there is nothing new to learn."""


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
    """Score the eval split with the model, then publish the version (db.publish.publish_version): what is
    written before the pool is committed first, the pool is scored page by page with calibrated probabilities,
    and the version is marked ready and the current version chosen in a last transaction."""
    started = time.perf_counter()
    scoring_start = start + (1 - start) * 0.1
    report(start, f"evaluating on {len(eval_posts)} eval posts")
    batch_report = throttled(report)
    pace = Pace()
    eval_probabilities = (
        score(
            [p.text for p in eval_posts],
            lambda done, total: batch_report(
                start + (scoring_start - start) * done / max(1, total),
                f"evaluated {done:,} of {total:,} eval posts{pace.left(done, total)}",
            ),
        )
        if eval_posts
        else np.zeros((0, len(LABELS)), dtype=np.float32)
    )

    def write_pool(temperature: float) -> dict[str, Any]:
        # Every probability this version writes is calibrated.
        calibrated = replace(spec, temperature=temperature)
        scored = score_pool(sessions, settings, score, calibrated, report, scoring_start, 0.98)
        failpoint("before-ready")  # scored, not yet ready
        return {"scoring": {"posts": scored, "seconds": round(time.perf_counter() - started, 1)}}

    publish_version(
        lambda: session_scope(sessions),
        spec.id,
        eval_posts,
        eval_probabilities,
        write_pool,
        extra_metrics=extra_metrics,
        say=lambda message: report(scoring_start, message),
    )
    # No report after this: a stop requested now must not fail a version that is already published.


def mark_failed(sessions: sessionmaker[Session], version_id: int, error: str) -> None:
    """The version is failed and its partial predictions removed; the current version is untouched."""
    with session_scope(sessions) as session:
        session.execute(delete(Prediction).where(Prediction.model_version_id == version_id))
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.id == version_id)
            .values(status=ModelStatus.FAILED, error=error[-5000:], is_current=False)
        )
