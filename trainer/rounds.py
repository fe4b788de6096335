"""A training round on this worker, one skeleton for the LoRA and the encoder backends: fail what an earlier
attempt of the job left, freeze the labels into a new version row, train and save the model's files in the
version's folder, then publish it (trainer.publish). A failure marks the version failed (its predictions removed)
and leaves the previous version current; each backend says only how it plans and trains a round."""

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from db.engine import session_scope
from db.jobs import fail_versions_of_job
from db.models import ModelStatus, ModelVersion, Split
from db.versions import LabelledPost, adapter_folder, consensus_posts, stored_folder
from trainer.config import WorkerSettings
from trainer.pool_scoring import ScoreTexts
from trainer.publish import NothingToTrain, Report, mark_failed, publish
from trainer.version_scorers import VersionSpec

TRAINED_AT = 0.7
"""Where the progress bar stands when training is done and publishing (evaluation, the pool) starts."""


@dataclass(frozen=True)
class Trained:
    """A round's model, its files saved in the version's folder."""

    score: ScoreTexts
    """The model as the worker scores with it (the eval split, then the pool)."""
    summary: dict[str, Any]
    """What the training did, kept in the version's metrics under "training"."""


Train = Callable[[int, Path], Trained]
"""Trains the round's model (reporting progress up to TRAINED_AT) and saves its files in the folder; called with
the version's id and its folder."""

Plan = Callable[[Session, list[LabelledPost], list[LabelledPost]], tuple[ModelVersion, Train]]
"""Given the project's labelled pool posts (at least one) and eval posts, the round's new version row (not added
yet) and how to train it; raises NothingToTrain when there is nothing new to learn."""


def choose_training_set(
    posts: list[LabelledPost], parent_snapshot: dict[str, str] | None, replay_ratio: float, seed: int
) -> tuple[list[LabelledPost], int, int]:
    """New or changed labels since the parent, plus a replay sample of the earlier ones.

    Returns (training posts, new count, replayed count). Without a parent every label is new."""
    if parent_snapshot is None:
        return posts, len(posts), 0
    new = [p for p in posts if parent_snapshot.get(str(p.item_id)) != p.label]
    if not new:
        raise NothingToTrain("no labels were added or changed since the parent version")
    old = [p for p in posts if parent_snapshot.get(str(p.item_id)) == p.label]
    replay = random.Random(seed).sample(old, min(len(old), math.ceil(replay_ratio * len(new))))
    return new + replay, len(new), len(replay)


def run_round(
    sessions: sessionmaker[Session],
    settings: WorkerSettings,
    project_id: int,
    report: Report,
    plan: Plan,
    *,
    job_id: int | None = None,
) -> int:
    """Plan, train and publish a new version of the project; returns its id. Raises NothingToTrain when there is
    nothing to learn (no version row is left then)."""
    if job_id is not None:
        with session_scope(sessions) as session:
            fail_versions_of_job(session, job_id, "an earlier attempt of its job stopped")
    with session_scope(sessions) as session:
        train_posts = consensus_posts(session, project_id, Split.POOL)
        eval_posts = consensus_posts(session, project_id, Split.EVAL)
        if not train_posts:
            raise NothingToTrain("the project has no labelled pool posts yet")
        version, train = plan(session, train_posts, eval_posts)
        session.add(version)
        session.flush()
        version_id, backend, base_model = version.id, str(version.backend), version.base_model
    try:
        folder = adapter_folder(settings.data_dir, project_id, version_id)
        trained = train(version_id, folder)
        with session_scope(sessions) as session:
            record = session.get(ModelVersion, version_id)
            assert record is not None
            record.adapter_path, record.status = stored_folder(project_id, version_id), ModelStatus.SCORING
        # The files are saved: from here on the model only scores.
        spec = VersionSpec(version_id, project_id, backend, base_model, str(folder))
        publish(
            sessions,
            settings,
            trained.score,
            spec,
            eval_posts,
            report,
            TRAINED_AT,
            {"training": trained.summary},
        )
        return version_id
    except BaseException as error:
        mark_failed(sessions, version_id, f"{type(error).__name__}: {error}")
        raise
