"""The stopping signal: kappa between successive versions' predictions, per language, over a window."""

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.annotation.agreement import cohen_kappa
from annotator.corpus.ingest import import_file
from annotator.reports.stopping import stopping_signals
from db.models import Item, ModelStatus, ModelVersion, Prediction, prediction_row
from testing.factories import make_project, posts, write_csv


def test_kappa() -> None:
    a = np.array([0, 1, 2, 3, 0, 1])
    assert cohen_kappa(a, a) == 1.0
    assert cohen_kappa(a, np.array([1, 0, 3, 2, 1, 0])) < 0
    assert cohen_kappa(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 0])) == pytest.approx(0.5)


def _version(session: Session, project_id: int, labels: dict[int, int]) -> None:
    version = ModelVersion(project_id=project_id, backend="fast", base_model="t", status=ModelStatus.READY)
    session.add(version)
    session.flush()
    for item_id, label in labels.items():
        p = [0.1, 0.1, 0.1, 0.1]
        p[label] = 0.7
        session.add(Prediction(**prediction_row(version.id, item_id, p)))
    session.flush()


def test_signal_per_language(session: Session, tmp_path: Path) -> None:
    project = make_project(session, languages=["en", "hu"])
    import_file(
        session,
        project,
        write_csv(tmp_path / "p.csv", posts(8, "en", "e") + posts(8, "hu", "h")),
        by=OPERATOR,
    )
    items = dict(session.execute(select(Item.id, Item.language)).all())
    assert all(not s.kappas for s in stopping_signals(session, project).values())
    rng = np.random.default_rng(0)
    for _ in range(4):  # English settles; Hungarian keeps changing
        _version(
            session,
            project.id,
            {i: (0 if lang == "en" else int(rng.integers(4))) for i, lang in items.items()},
        )
    signals = stopping_signals(session, project, window=3)
    assert signals["en"].stable and signals["en"].kappas == [1.0, 1.0, 1.0]
    assert not signals["hu"].stable and len(signals["hu"].kappas) == 3
    assert "no longer change" in signals["en"].message
