"""The quantification estimators: known answers on constructed counts, and QuaPy's implementations as the
reference (QuaPy is a test dependency only: it takes seconds to import)."""

import numpy as np
import pytest
from quapy.method.aggregative import ACC, EMQ

from annotator.reports.quantify import (
    METHODS,
    Counted,
    EvalPosts,
    calibrate,
    estimate,
    expectation_maximisation,
    fit_error_model,
    fit_errors,
    group_shares,
    language_weights,
    never_predicted,
    scoped,
    simplex_least_squares,
)

K = 4


def one_hot(labels: np.ndarray) -> np.ndarray:
    return np.eye(K)[labels]


def confused(true: np.ndarray, right: float) -> np.ndarray:
    """Predicted labels: the first `right` share of each class right, the rest one class further on."""
    predicted = true.copy()
    for c in range(K):
        index = np.flatnonzero(true == c)
        wrong = index[round(right * len(index)) :]
        predicted[wrong] = (c + 1) % K
    return predicted


def simulate(rng: np.random.Generator, n: int, prior: list[float], signal: float = 2.0) -> tuple:
    """Posts of known labels and a noisy but informative classifier's probabilities."""
    gold = rng.choice(K, size=n, p=prior)
    logits = rng.normal(size=(n, K))
    logits[np.arange(n), gold] += signal
    probabilities = np.exp(logits)
    return probabilities / probabilities.sum(axis=1, keepdims=True), gold


def test_a_perfect_classifier_gives_the_true_shares_by_every_method() -> None:
    evals = np.repeat(np.arange(K), 25)
    target = np.repeat(np.arange(K), [10, 50, 15, 25])
    errors = fit_errors(one_hot(evals), evals)
    for method in METHODS:
        assert np.allclose(estimate(method, one_hot(target), errors), [0.1, 0.5, 0.15, 0.25], atol=1e-6), (
            method
        )


def test_adjusted_counts_undo_a_known_confusion_exactly() -> None:
    # Eval posts: 80% of each label recognised, 20% taken for the next label; the counted posts are confused
    # in exactly the same proportions, so the counted shares are M @ truth and ACC must give the truth back.
    evals = np.repeat(np.arange(K), 100)
    truth = np.array([0.1, 0.5, 0.1, 0.3])
    target = np.repeat(np.arange(K), (truth * 1000).astype(int))
    errors = fit_errors(one_hot(confused(evals, 0.8)), evals)
    expected = np.array([[0.8, 0, 0, 0.2], [0.2, 0.8, 0, 0], [0, 0.2, 0.8, 0], [0, 0, 0.2, 0.8]])
    assert np.allclose(errors.hard, expected)
    counted = one_hot(confused(target, 0.8))
    raw = estimate("cc", counted, errors)
    assert not np.allclose(raw, truth, atol=0.02)  # counting is biased ...
    assert np.allclose(estimate("acc", counted, errors), truth, atol=1e-9)  # ... the adjustment is not
    assert np.allclose(estimate("pacc", counted, errors), truth, atol=1e-9)


def test_the_confusion_rates_match_quapy() -> None:
    rng = np.random.default_rng(3)
    probabilities, gold = simulate(rng, 300, [0.4, 0.3, 0.2, 0.1])
    reference = ACC.getPteCondEstim(list(range(K)), gold, probabilities.argmax(axis=1))
    assert np.allclose(fit_errors(probabilities, gold).hard, reference)


@pytest.mark.parametrize("seed", range(6))
def test_the_simplex_solver_matches_quapy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    matrix = rng.dirichlet(np.ones(K) * 0.7, size=K).T  # columns are distributions, as in ACC
    target = rng.dirichlet(np.ones(K) * (0.3 if seed % 2 else 3))  # some targets fall outside M's image
    ours = simplex_least_squares(matrix, target)
    theirs = ACC.solve_adjustment(matrix, target, method="inversion", solver="minimize")
    assert ours.min() >= 0 and abs(ours.sum() - 1) < 1e-9
    residual = np.linalg.norm(matrix @ ours - target)
    assert residual <= np.linalg.norm(matrix @ theirs - target) + 1e-6  # exact: never worse than SLSQP
    assert np.allclose(ours, theirs, atol=2e-3)


def test_expectation_maximisation_matches_quapy() -> None:
    rng = np.random.default_rng(5)
    probabilities, _ = simulate(rng, 2000, [0.1, 0.6, 0.1, 0.2])
    source = np.array([0.25, 0.25, 0.25, 0.25])
    theirs, _ = EMQ.EM(source, probabilities, epsilon=1e-8)
    assert np.allclose(expectation_maximisation(probabilities, source, tolerance=1e-8), theirs, atol=1e-5)


def test_calibration_undoes_an_overconfident_model() -> None:
    rng = np.random.default_rng(7)
    honest, gold = simulate(rng, 3000, [0.25] * 4, signal=1.0)
    overconfident = honest**3 / (honest**3).sum(axis=1, keepdims=True)
    errors = fit_errors(overconfident, gold)
    assert 2.0 < np.exp(errors.calibration[0]) < 4.5  # the fitted temperature finds the cube

    def nll(p: np.ndarray) -> float:
        return float(-np.mean(np.log(p[np.arange(len(gold)), gold])))

    assert nll(calibrate(overconfident, errors.calibration)) < nll(overconfident) - 0.05


def test_corrections_beat_counting_under_a_shift() -> None:
    rng = np.random.default_rng(11)
    eval_p, eval_gold = simulate(rng, 2000, [0.25] * 4, signal=1.5)
    errors = fit_errors(eval_p, eval_gold)
    truth_errors = {method: [] for method in METHODS}
    for _ in range(20):
        prior = rng.dirichlet(np.ones(K))
        target_p, target_gold = simulate(rng, 1000, list(prior), signal=1.5)
        truth = np.bincount(target_gold, minlength=K) / len(target_gold)
        for method in METHODS:
            truth_errors[method].append(np.abs(estimate(method, target_p, errors) - truth).mean())
    mean = {method: float(np.mean(values)) for method, values in truth_errors.items()}
    for method in ("acc", "pacc", "emq"):
        assert mean[method] < mean["cc"] * 0.6, mean


def test_related_shares_leave_out_the_unrelated_posts() -> None:
    assert np.allclose(scoped(np.array([0.1, 0.2, 0.2, 0.5]), "related"), [0.2, 0.4, 0.4])
    assert np.isnan(scoped(np.array([0.0, 0.0, 0.0, 1.0]), "related")).all()


def _language_bias(rng: np.random.Generator, n: int, prior: list[float], language: str) -> tuple:
    """A model that reads English well and, in Arabic, takes most anti posts for neutral ones."""
    probabilities, gold = simulate(rng, n, prior, signal=3.0)
    if language == "ar":
        anti = np.flatnonzero(gold == 1)[: int(0.7 * np.sum(gold == 1))]
        probabilities[anti] = probabilities[anti][:, [0, 2, 1, 3]]  # anti and neutral swapped
    return probabilities, gold


def test_each_language_is_corrected_with_its_own_errors_and_small_ones_fall_back() -> None:
    rng = np.random.default_rng(13)
    parts = [
        (lang, *_language_bias(rng, n, [0.25] * 4, lang)) for lang, n in (("en", 400), ("ar", 400), ("tr", 8))
    ]
    evals = EvalPosts(
        np.concatenate([p for _, p, _ in parts]),
        np.concatenate([g for _, _, g in parts]),
        np.concatenate([[lang] * len(g) for lang, _, g in parts]).astype(np.str_),
    )
    target_p, target_gold = _language_bias(rng, 3000, [0.1, 0.5, 0.1, 0.3], "ar")
    counted = Counted(target_p, np.array(["ar"] * 3000), np.zeros(3000, dtype=np.int64), [("ar",)])
    (ar,) = group_shares(counted, evals, resamples=50, min_eval=20)
    truth = np.bincount(target_gold, minlength=K) / 3000
    assert ar.pooled_languages == []
    assert abs(ar.point["cc"][1] - truth[1]) > 0.25  # counting misses most Arabic anti posts
    for method in ("acc", "pacc"):
        assert abs(ar.point[method][1] - truth[1]) < 0.08, (method, ar.point[method], truth)
        low, high = ar.interval(method)
        assert low[1] <= truth[1] <= high[1]
    # EM only recalibrates the probabilities (a temperature and a bias per label): it cannot undo a model that
    # confidently takes one label for another, so it helps here, but less (docs/prevalence.md).
    assert abs(ar.point["emq"][1] - truth[1]) < abs(ar.point["cc"][1] - truth[1]) - 0.05
    counted_tr = Counted(target_p[:50], np.array(["tr"] * 50), np.zeros(50, dtype=np.int64), [("tr",)])
    (tr,) = group_shares(counted_tr, evals, resamples=5, min_eval=20)
    assert tr.pooled_languages == ["tr"]  # 8 eval posts: left raw by default ...
    assert all(np.allclose(tr.point[m], tr.point["cc"]) for m in METHODS)
    (tr,) = group_shares(counted_tr, evals, resamples=5, min_eval=20, fallback="pooled")
    assert not np.allclose(tr.point["acc"], tr.point["cc"])  # ... or corrected with the pooled errors


def test_intervals_carry_the_uncertainty_of_the_eval_posts() -> None:
    rng = np.random.default_rng(17)
    target_p, _ = simulate(rng, 5000, [0.2, 0.4, 0.1, 0.3])
    counted = Counted(target_p, np.array(["en"] * 5000), np.zeros(5000, dtype=np.int64), [("en",)])
    widths = []
    for n_eval in (60, 2000):
        eval_p, eval_gold = simulate(rng, n_eval, [0.25] * 4)
        evals = EvalPosts(eval_p, eval_gold, np.array(["en"] * n_eval))
        (group,) = group_shares(counted, evals, ["cc", "pacc"], resamples=100, min_eval=20)
        low, high = group.interval("pacc")
        widths.append(float(np.mean(high - low)))
        raw_low, raw_high = group.interval("cc")
        assert np.mean(raw_high - raw_low) < 0.04  # 5,000 counted posts: counting alone is precise
    assert widths[0] > 2 * widths[1]  # few eval posts: wide intervals, although the counted posts are many


def test_groups_weigh_each_language_by_its_posts() -> None:
    rng = np.random.default_rng(19)
    eval_p, eval_gold = simulate(rng, 400, [0.25] * 4)
    evals = EvalPosts(eval_p, eval_gold, np.array(["en"] * 200 + ["es"] * 200))
    target_p, _ = simulate(rng, 300, [0.25] * 4)
    languages = np.array(["en"] * 100 + ["es"] * 200)
    counted = Counted(target_p, languages, np.zeros(300, dtype=np.int64), [("UK",)])
    (uk,) = group_shares(counted, evals, ["cc"], resamples=3)
    assert uk.posts == 300 and uk.languages == {"en": 100, "es": 200}
    assert np.allclose(uk.point["cc"], np.bincount(target_p.argmax(axis=1), minlength=K) / 300)


def test_an_unknown_method_is_refused() -> None:
    rng = np.random.default_rng(0)
    p, g = simulate(rng, 10, [0.25] * 4)
    with pytest.raises(ValueError, match="unknown method 'median'"):
        estimate("median", p, fit_errors(p, g))


def test_weights_count_like_repeated_posts_and_balanced_pooling_weighs_languages_alike() -> None:
    rng = np.random.default_rng(23)
    p, g = simulate(rng, 40, [0.25] * 4)
    doubled = fit_errors(np.concatenate([p, p[:10]]), np.concatenate([g, g[:10]]))
    weighted = fit_errors(p, g, weights=np.array([2.0] * 10 + [1.0] * 30))
    assert np.allclose(doubled.hard, weighted.hard) and np.allclose(doubled.soft, weighted.soft)
    assert np.allclose(doubled.prior, weighted.prior)
    assert np.allclose(doubled.calibration, weighted.calibration, atol=1e-3)
    languages = np.array(["en"] * 30 + ["ar"] * 10)
    weights = language_weights(languages)
    assert np.isclose(weights.sum(), 40) and np.isclose(weights[:30].sum(), weights[30:].sum())
    evals = EvalPosts(p, g, languages)
    assert not np.allclose(
        fit_error_model(evals, 20, balanced=True).pooled.hard, fit_error_model(evals, 20).pooled.hard
    )


def test_a_label_the_model_never_gives_in_a_language_is_named() -> None:
    """Italian: a fifth of the posts are pro but the model never says pro there (as on the gold set of issue 32);
    German gets every label. A language with too few posts to count is not judged."""
    rng = np.random.default_rng(0)
    gold_it = rng.integers(0, K, 100)
    said_it = np.where(gold_it == 0, 2, gold_it)  # pro read as neutral
    gold_de = rng.integers(0, K, 100)
    counted = Counted(
        probabilities=np.concatenate([one_hot(said_it), one_hot(gold_de), one_hot(np.array([1] * 5))]),
        languages=np.array(["it"] * 100 + ["de"] * 100 + ["hu"] * 5),
        groups=np.zeros(205, dtype=np.int64),
        group_keys=[()],
    )
    evals = EvalPosts(
        probabilities=np.concatenate([one_hot(said_it[:30]), one_hot(gold_de[:30])]),
        gold=np.concatenate([gold_it[:30], gold_de[:30]]),
        languages=np.array(["it"] * 30 + ["de"] * 30),
    )
    assert never_predicted(counted, evals) == {"it": ["pro"]}
