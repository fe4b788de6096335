"""The ensemble version: built from the stored probabilities of the newest version of each backend, evaluated
and calibrated like any version, current when it is the newest, and not built twice from the same members."""

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.demo import create_demo_project
from core.ensemble_weights import BY_LANGUAGE
from core.labels import LABELS
from core.metrics import VersionMetrics
from core.pooling import pool
from db.ensemble import build_ensemble, ensemble_members, pooling_of, weights_of
from db.models import Backend, Item, ModelStatus, ModelVersion, Prediction, Split
from db.versions import consensus_posts, mark_ready, probabilities_of, write_predictions


def _version(
    session: Session, project_id: int, backend: Backend, probabilities: dict[int, np.ndarray]
) -> int:
    version = ModelVersion(
        project_id=project_id,
        backend=backend,
        base_model="test",
        status=ModelStatus.SCORING,
        metrics={"all": {"macro_f1": 0.3, "macro_f1_ci95": [0.2, 0.4]}},
        training_snapshot={"labels": {}, "trained_on": 42},
    )
    session.add(version)
    session.flush()
    ids = sorted(probabilities)
    write_predictions(session, version.id, ids, np.array([probabilities[i] for i in ids]))
    mark_ready(session, version)
    return version.id


def test_the_ensemble_pools_the_newest_version_of_each_backend(session: Session) -> None:
    project_id = create_demo_project(session, by=OPERATOR).project.id
    items = list(session.scalars(select(Item.id).where(Item.project_id == project_id).order_by(Item.id)))
    gold = {p.item_id: LABELS.index(p.label) for p in consensus_posts(session, project_id, Split.EVAL)}
    rng = np.random.default_rng(0)

    def model(right: float) -> dict[int, np.ndarray]:
        """Right with probability `right` on the eval posts, noise elsewhere."""
        result = {}
        for item in items:
            p = rng.dirichlet(np.ones(4))
            if item in gold and rng.random() < right:
                p = 0.3 * p + 0.7 * np.eye(4)[gold[item]]
            result[item] = p
        return result

    _version(session, project_id, Backend.FAST, model(0.5))  # older: not a member
    assert build_ensemble(session, project_id) is None  # one backend: nothing to average
    fast = _version(session, project_id, Backend.FAST, model(0.5))
    encoder = _version(session, project_id, Backend.ENCODER, model(0.6))
    assert [v.id for v in ensemble_members(session, project_id)] == [fast, encoder]
    ensemble = build_ensemble(session, project_id)
    assert (
        ensemble is not None and ensemble.backend == Backend.ENSEMBLE and ensemble.status == ModelStatus.READY
    )
    assert ensemble.is_current and ensemble.training_snapshot["members"] == [fast, encoder]
    metrics = VersionMetrics.of(ensemble.metrics)
    assert ensemble.metrics["all"]["n"] == len(gold) and metrics.temperature > 0
    count = session.scalar(select(func.count()).where(Prediction.model_version_id == ensemble.id))
    assert count == len(items)  # every post a member scored: the pool and the eval posts
    assert pooling_of(ensemble) == BY_LANGUAGE
    weights = weights_of(ensemble)
    assert weights is not None and weights.unlabelled == (0.0, 1.0)  # no eval labels: not the fast model
    eval_languages = {p.language for p in consensus_posts(session, project_id, Split.EVAL)}
    assert set(weights.by_language) == eval_languages
    members = [probabilities_of(session, v, items) for v in (fast, encoder)]
    language = dict(session.execute(select(Item.id, Item.language).where(Item.id.in_(items))).all())
    pool_items = [i for i in items if i not in gold]
    expected = np.array(
        [weights.pool_present([np.array(m[i]) for m in members], language[i]) for i in pool_items]
    )
    stored = probabilities_of(session, ensemble.id, items)
    assert np.array_equal(np.array([stored[i] for i in pool_items]).argmax(axis=1), expected.argmax(axis=1))
    assert np.allclose([sum(stored[i]) for i in items[:5]], 1.0, atol=1e-4)
    assert build_ensemble(session, project_id) is None  # the same members: no second ensemble
    lora = _version(session, project_id, Backend.LORA, model(0.4))
    again = build_ensemble(session, project_id)
    assert again is not None and again.training_snapshot["members"] == [fast, encoder, lora]


def test_pooling_rules() -> None:
    sure = np.array([[0.01, 0.59, 0.3, 0.1]])
    unsure = np.array([[0.6, 0.1, 0.2, 0.1]])
    # The mean follows the one member that is sure; the geometric mean favours the label both find likely.
    assert pool([sure, unsure], "arithmetic").argmax() == 1
    geometric = pool([sure, unsure], "geometric")
    assert geometric.argmax() == 2 and np.isclose(geometric.sum(), 1.0)
    expected = np.sqrt(sure * unsure) / np.sqrt(sure * unsure).sum()
    assert np.allclose(geometric, expected)
    # A zero does not veto a label outright, and one member pools to itself.
    floored = pool([np.array([[0.0, 1.0, 0.0, 0.0]]), np.array([[0.5, 0.0, 0.5, 0.0]])], "geometric")
    assert np.isfinite(floored).all() and np.isclose(floored.sum(), 1.0)
    assert np.allclose(pool([sure], "geometric"), sure / sure.sum())
    with pytest.raises(ValueError, match="unknown pooling rule 'median'"):
        pool([sure, unsure], "median")


def test_a_language_where_one_member_is_right_leans_on_it(session: Session) -> None:
    """Through the stored rows: in each eval language the encoder is right and the fast model guesses, so the
    fitted weights lean to the encoder, and its eval score is cross-fitted
    (no post pooled with weights fitted on itself) yet above the fast model's."""
    project_id = create_demo_project(session, by=OPERATOR).project.id
    items = list(session.scalars(select(Item.id).where(Item.project_id == project_id).order_by(Item.id)))
    gold = {p.item_id: LABELS.index(p.label) for p in consensus_posts(session, project_id, Split.EVAL)}
    rng = np.random.default_rng(1)
    guess = {i: rng.dirichlet(np.ones(4)) for i in items}
    right = {i: 0.2 * rng.dirichlet(np.ones(4)) + 0.8 * np.eye(4)[gold.get(i, 0)] for i in items}
    fast = _version(session, project_id, Backend.FAST, guess)
    encoder = _version(session, project_id, Backend.ENCODER, right)
    ensemble = build_ensemble(session, project_id)
    assert ensemble is not None and ensemble.training_snapshot["members"] == [fast, encoder]
    weights = weights_of(ensemble)
    assert weights is not None and weights.by_language
    for language, (fast_weight, encoder_weight) in weights.by_language.items():
        assert encoder_weight > 0.5 > fast_weight, language
    scores = {
        v: VersionMetrics.of(session.get(ModelVersion, v).metrics).overall.macro_f1  # type: ignore[union-attr]
        for v in (fast, ensemble.id)
    }
    assert scores[ensemble.id] > scores[fast]
