"""A retrain end to end on a real database with a tiny model: train, evaluate, score, ready and current;
incremental rounds resume the parent; a failure leaves the previous version current."""

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from annotator.accounts.access import OPERATOR
from annotator.demo import create_demo_project
from core.metrics import VersionMetrics
from db.engine import session_scope
from db.models import (
    PROBABILITY_COLUMNS,
    Item,
    ModelStatus,
    ModelVersion,
    Prediction,
    Split,
    User,
)
from db.versions import LabelledPost, select_current, version_folder
from testing.factories import add_label, unlabelled_pool_items
from trainer.config import LoraSettings, ModelSettings, TrainSettings, WorkerSettings
from trainer.lora_retrain import run_retrain
from trainer.publish import NothingToTrain
from trainer.rounds import choose_training_set
from trainer.version_scorers import open_scorer, version_spec


@pytest.fixture
def settings(tiny_llama: Path, tmp_path: Path) -> WorkerSettings:
    return WorkerSettings(
        data_dir=tmp_path / "data",
        model=ModelSettings(base_model=str(tiny_llama)),
        lora=LoraSettings(r=4, alpha=8),
        train=TrainSettings(epochs=1, batch_size=8),
    )


@pytest.fixture
def project_id(sessions: sessionmaker[Session]) -> int:
    with session_scope(sessions) as session:
        return create_demo_project(session, by=OPERATOR).project.id


def _reports() -> tuple[list[tuple[float, str]], object]:
    seen: list[tuple[float, str]] = []
    return seen, lambda fraction, message: seen.append((fraction, message))


def test_retrain_end_to_end(
    sessions: sessionmaker[Session], settings: WorkerSettings, project_id: int
) -> None:
    seen, report = _reports()
    version_id = run_retrain(sessions, settings, project_id, report)  # type: ignore[arg-type]
    with sessions() as session:
        version = session.get(ModelVersion, version_id)
        assert version is not None and version.status == ModelStatus.READY and version.is_current
        assert (
            version.adapter_path == f"adapters/project-{project_id}/version-{version_id}"
        )  # under the data folder
        folder = version_folder(settings.data_dir, version)
        assert folder is not None and (folder / "adapter_config.json").exists()
        metrics = version.metrics
        assert metrics["all"]["n"] == 70 and len(metrics["languages"]) == 14
        assert 0.0 <= metrics["all"]["macro_f1"] <= 1.0 and len(metrics["all"]["macro_f1_ci95"]) == 2
        pool = session.scalar(select(func.count()).select_from(Item).where(Item.split == Split.POOL))
        predictions = session.scalar(
            select(func.count()).select_from(Prediction).where(Prediction.model_version_id == version_id)
        )
        assert predictions == pool + 70  # the pool, and the eval posts (kept for findings)
        assert version.training_snapshot["new"] == version.training_snapshot["trained_on"] == 42
        calibration = metrics["calibration"]  # 3 of each language's 5 eval posts fit it, 2 report
        assert calibration["fitted_on"] == 42 and calibration["reported_on"] == 28
        assert calibration["temperature"] == VersionMetrics.of(metrics).temperature > 0
        # The pool was scored with the version's temperature, as `classify` scores archives with it.
        stored = session.execute(
            select(Item.text, *PROBABILITY_COLUMNS)
            .join(Prediction, Prediction.item_id == Item.id)
            .where(Prediction.model_version_id == version_id, Item.split == Split.POOL)
            .order_by(Item.id)
            .limit(6)
        ).all()
        scorer = open_scorer(version_spec(version, "1", settings.data_dir), settings, log=lambda _m: None)
        np.testing.assert_allclose(
            scorer.score([row[0] for row in stored]), np.array([row[1:] for row in stored]), atol=2e-5
        )
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 0.98  # the job itself then reads 1.0
    assert any("training: step" in m for _, m in seen) and any("scored" in m for _, m in seen)
    assert any(m.startswith("evaluated") for _, m in seen)  # the bar moves while evaluating, too


def test_incremental_round_resumes_the_parent(
    sessions: sessionmaker[Session], settings: WorkerSettings, project_id: int
) -> None:
    _, report = _reports()
    first = run_retrain(sessions, settings, project_id, report)  # type: ignore[arg-type]
    with pytest.raises(NothingToTrain):
        run_retrain(sessions, settings, project_id, report)  # type: ignore[arg-type]
    with session_scope(sessions) as session:
        user = session.scalar(select(User).where(User.username == "amira"))
        for item_id in unlabelled_pool_items(session, 5):
            add_label(session, item_id, user.id)  # type: ignore[union-attr]
    with session_scope(sessions) as session:  # a fast-model version becomes current in between
        fast = ModelVersion(project_id=project_id, backend="fast", base_model="e5", status=ModelStatus.READY)
        session.add(fast)
        session.flush()
        fast.metrics = {"all": {"macro_f1": 1.0}}
        select_current(session, project_id)
        assert fast.is_current
    second = run_retrain(sessions, settings, project_id, report)  # type: ignore[arg-type]
    with sessions() as session:
        version = session.get(ModelVersion, second)
        assert version is not None and version.parent_id == first
        assert version.training_snapshot["new"] == 5 and version.training_snapshot["replayed"] == 5
        assert (
            session.scalar(select(func.count()).select_from(ModelVersion).where(ModelVersion.is_current)) == 1
        )


def test_failure_leaves_the_previous_version_current(
    sessions: sessionmaker[Session], settings: WorkerSettings, project_id: int
) -> None:
    _, report = _reports()
    first = run_retrain(sessions, settings, project_id, report)  # type: ignore[arg-type]

    def crash_while_scoring(fraction: float, message: str) -> None:
        if message.startswith("scored"):
            raise RuntimeError("the machine lost power")

    with pytest.raises(RuntimeError):
        run_retrain(sessions, settings, project_id, crash_while_scoring, from_scratch=True)
    with sessions() as session:
        versions = {v.id: v for v in session.scalars(select(ModelVersion))}
        failed = [v for v in versions.values() if v.status == ModelStatus.FAILED]
        assert versions[first].is_current and len(failed) == 1 and "lost power" in (failed[0].error or "")
        assert (
            session.scalar(
                select(func.count())
                .select_from(Prediction)
                .where(Prediction.model_version_id == failed[0].id)
            )
            == 0
        )


def test_training_set_is_new_labels_plus_replay() -> None:
    posts = [LabelledPost(i, f"t{i}", "en", "pro") for i in range(10)]
    chosen, new, replayed = choose_training_set(posts, None, 1.0, 0)
    assert (len(chosen), new, replayed) == (10, 10, 0)
    parent = {str(i): "pro" for i in range(8)} | {"8": "anti"}  # 8 changed its label, 9 is new
    chosen, new, replayed = choose_training_set(posts, parent, 1.0, 0)
    assert (new, replayed) == (2, 2) and {p.item_id for p in chosen[:2]} == {8, 9}
