"""Ensemble weights by language: fitted on each language's eval posts, shrunk by how few they are toward the
members other than the fast model (all a language without eval posts gets), and cross-fitted eval
probabilities."""

import numpy as np
import pytest

from core.ensemble_weights import (
    LanguageWeights,
    best_weights,
    cross_fitted,
    default_weights,
    fit_language_weights,
    grid,
)


def _members(gold: np.ndarray, right: list[bool], rng: np.random.Generator) -> list[np.ndarray]:
    """One member per entry: right ones give the gold label 0.7 plus noise, wrong ones the next label."""
    rows = []
    for is_right in right:
        target = gold if is_right else (gold + 1) % 4
        rows.append(0.7 * np.eye(4)[target] + 0.3 * rng.dirichlet(np.ones(4), size=len(gold)))
    return rows


def test_the_grid_covers_the_simplex() -> None:
    two, three = grid(2), grid(3)
    assert len(two) == 11 and len(three) == 66
    assert np.allclose(two.sum(axis=1), 1) and np.allclose(three.sum(axis=1), 1) and three.min() >= 0


def test_the_best_weights_lean_on_the_member_that_is_right() -> None:
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 4, 200)
    assert best_weights(_members(gold, [False, True], rng), gold).tolist() == [0.0, 1.0]
    same = _members(gold, [True], rng) * 2  # identical members: every weight ties, equal weights win
    assert best_weights(same, gold).tolist() == [0.5, 0.5]


def test_weights_by_language_shrunk_toward_the_overall_weights_and_those_toward_the_default() -> None:
    """The fast model is right in German (120 eval posts) and wrong in Italian (10), the encoder the other way
    round: overall the fast model earns most of the weight, German more, Italian less; a language without eval
    labels gets the encoder alone."""
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 4, 130)
    languages = ["de"] * 120 + ["it"] * 10
    fast, encoder = _members(gold, [True, False], rng)
    fast[120:], encoder[120:] = encoder[120:].copy(), fast[120:].copy()
    weights = fit_language_weights([fast, encoder], gold.tolist(), languages, ["fast", "encoder"])
    de, it = weights.of("de"), weights.of("it")
    assert de[0] > 0.8 and it[0] < de[0] - 0.1  # Italian's ten posts pull it toward the encoder
    assert it[0] > 0.5  # ...but its own best (the encoder alone) is shrunk toward the overall weights
    assert weights.of("ko") == weights.of(None) == (0.0, 1.0)  # no eval labels: the encoder alone
    assert default_weights(["fast"]) == (1.0,) and default_weights(["fast", "lora", "encoder"]) == (
        0.0,
        0.5,
        0.5,
    )
    none = fit_language_weights([fast[:0], encoder[:0]], [], [], ["fast", "encoder"])
    assert none.by_language == {} and none.unlabelled == (0.0, 1.0)
    again = LanguageWeights.from_json(weights.to_json())
    assert again == weights
    pooled = weights.pool([fast[:3], encoder[:3]], ["de", "ko", "it"])
    assert np.allclose(pooled[1], encoder[1]) and np.allclose(pooled.sum(axis=1), 1)
    assert np.allclose(weights.pool_present([None, encoder[0]], "de"), encoder[0])  # renormalised
    with pytest.raises(ValueError, match="no member scored"):
        weights.pool_present([None, None], "de")
    with pytest.raises(ValueError, match="one backend per member"):
        fit_language_weights([fast], gold.tolist(), languages, ["fast", "encoder"])


def test_cross_fitted_probabilities_never_use_weights_fitted_on_the_same_post() -> None:
    """A language's one labelled post is pooled as a language without labels (the weights of the other folds know
    nothing of it), whatever its own label would have taught."""
    rng = np.random.default_rng(2)
    gold = rng.integers(0, 4, 201)
    languages = ["de"] * 200 + ["hu"]
    fast, encoder = _members(gold, [True, False], rng)
    cross = cross_fitted([fast, encoder], gold.tolist(), languages, ["fast", "encoder"])
    assert np.allclose(cross[200], encoder[200])  # Hungarian: no other post, so the encoder alone
    german_right = (cross[:200].argmax(axis=1) == gold[:200]).mean()
    assert german_right > 0.9  # German: the other folds' posts taught the weights to lean on the fast model
