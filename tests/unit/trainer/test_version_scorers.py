"""The scorers behind classify: an ensemble pooled by its version's rule (the fast head's arithmetic:
tests/unit/core/test_fast_head.py), and the checks that refuse a version which cannot score."""

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.orm import Session

from core.fast_head import FAST_HEAD_FILE
from db.models import Backend, ModelStatus, ModelVersion
from testing.factories import make_project
from trainer.version_scorers import EnsembleScorer, VersionNotUsable, version_spec


def test_versions_that_cannot_score_are_refused_with_a_reason(session: Session, tmp_path: Path) -> None:
    project = make_project(session)
    with pytest.raises(VersionNotUsable, match="There is no model version 7"):
        version_spec(None, "7", tmp_path)
    version = ModelVersion(
        project_id=project.id, backend=Backend.LORA, base_model="m", status=ModelStatus.TRAINING
    )
    session.add(version)
    session.flush()
    with pytest.raises(VersionNotUsable, match=f"Model version {version.id} is training, not ready"):
        version_spec(version, str(version.id), tmp_path)
    version.status = ModelStatus.READY
    with pytest.raises(VersionNotUsable, match="has no model files on this machine"):
        version_spec(version, str(version.id), tmp_path)
    version.backend, version.adapter_path = Backend.FAST, str(tmp_path)
    with pytest.raises(VersionNotUsable, match="kept no head to score with: retrain the fast model"):
        version_spec(version, str(version.id), tmp_path)
    version.backend = Backend.LORA
    spec = version_spec(version, str(version.id), tmp_path)
    assert (spec.id, spec.backend, spec.adapter_path) == (version.id, "lora", str(tmp_path))


class _Fixed:
    def __init__(self, row: list[float]) -> None:
        self.row = np.array([row], dtype=np.float32)

    def score(self, texts: list[str]) -> np.ndarray:
        return np.repeat(self.row, len(texts), axis=0)


def test_an_ensemble_scores_by_the_rule_it_was_built_with(session: Session, tmp_path: Path) -> None:
    project = make_project(session)
    members = []
    for backend in (Backend.FAST, Backend.ENCODER):
        (tmp_path / str(backend)).mkdir()
        (tmp_path / str(backend) / FAST_HEAD_FILE).touch()
        member = ModelVersion(
            project_id=project.id,
            backend=backend,
            base_model="m",
            status=ModelStatus.READY,
            adapter_path=str(tmp_path / str(backend)),
        )
        session.add(member)
        session.flush()
        members.append(member.id)
    snapshot = {"members": members}
    old = ModelVersion(
        project_id=project.id,
        backend=Backend.ENSEMBLE,
        base_model="e",
        status=ModelStatus.READY,
        training_snapshot=snapshot,
    )
    new = ModelVersion(
        project_id=project.id,
        backend=Backend.ENSEMBLE,
        base_model="e",
        status=ModelStatus.READY,
        training_snapshot=snapshot | {"pooling": "geometric"},
    )
    session.add_all([old, new])
    session.flush()
    assert version_spec(old, "old", tmp_path).pooling == "arithmetic"  # built before the rule was recorded
    spec = version_spec(new, "new", tmp_path)
    assert spec.pooling == "geometric" and [m.id for m in spec.members] == members
    scorers = [_Fixed([0.01, 0.59, 0.3, 0.1]), _Fixed([0.6, 0.1, 0.2, 0.1])]
    assert EnsembleScorer(scorers, "arithmetic").score(["a"]).argmax() == 1
    assert EnsembleScorer(scorers, spec.pooling).score(["a", "b"]).argmax(axis=1).tolist() == [2, 2]
