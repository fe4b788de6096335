"""Temperature scaling and expected calibration error (core.calibration)."""

import numpy as np
import pytest

from core.calibration import (
    MIN_FIT_POSTS,
    apply_temperature,
    calibrate,
    expected_calibration_error,
    fit_temperature,
    fitting_half,
    negative_log_likelihood,
)


def _overconfident(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A model right 60% of the time that always says 0.97."""
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 4, n)
    predicted = np.where(rng.random(n) < 0.6, gold, (gold + 1) % 4)
    probabilities = np.full((n, 4), 0.01)
    probabilities[np.arange(n), predicted] = 0.97
    return probabilities, gold


def test_temperature_keeps_the_argmax_and_softens_or_sharpens() -> None:
    p = np.array([[0.7, 0.2, 0.05, 0.05], [0.1, 0.1, 0.1, 0.7]])
    soft, sharp = apply_temperature(p, 3.0), apply_temperature(p, 0.5)
    assert (soft.argmax(1) == p.argmax(1)).all() and (sharp.argmax(1) == p.argmax(1)).all()
    assert soft.max() < 0.7 < sharp.max() and np.allclose(soft.sum(1), 1, atol=1e-6)
    assert np.allclose(apply_temperature(p, 1.0), p)
    assert apply_temperature(np.zeros((0, 4)), 2.0).shape == (0, 4)


def test_an_overconfident_model_gets_a_temperature_above_one_and_a_smaller_error() -> None:
    p, gold = _overconfident(400)
    t = fit_temperature(p, gold)
    assert t > 1.5
    nll = negative_log_likelihood(p, gold, t)
    assert nll < negative_log_likelihood(p, gold, 1.0)
    assert nll <= min(negative_log_likelihood(p, gold, t * f) for f in (0.9, 1.1)) + 1e-6  # a minimum
    before, after = (
        expected_calibration_error(p, gold),
        expected_calibration_error(apply_temperature(p, t), gold),
    )
    assert before == pytest.approx(0.37, abs=0.06) and after < 0.1


def test_ece_of_a_perfectly_calibrated_bin_is_zero() -> None:
    p = np.tile([0.5, 0.5, 0.0, 0.0], (4, 1))
    assert expected_calibration_error(p, np.array([0, 0, 1, 1])) == pytest.approx(0.0)  # says 0.5, right half
    assert expected_calibration_error(p, np.array([0, 0, 0, 0])) == pytest.approx(0.5)


def test_calibrate_fits_on_one_half_and_reports_on_the_other_per_language() -> None:
    p, gold = _overconfident(200, seed=1)
    ids = list(range(1000, 1200))
    languages = ["tr" if i % 2 else "ar" for i in range(200)]
    half = fitting_half(ids, languages)
    assert half.sum() == 100 and half[[i for i in range(200) if languages[i] == "ar"]].sum() == 50
    assert fitting_half(ids[::-1], languages[::-1]).tolist() == half.tolist()[::-1]  # by id, not position
    temperature, report = calibrate(p, gold.tolist(), languages, ids)
    assert temperature == report["temperature"] > 1.5
    assert report["fitted_on"] == report["reported_on"] == 100
    assert report["ece"] < report["ece_before"]
    assert (
        set(report["languages"]) == {"ar", "tr"} and sum(m["n"] for m in report["languages"].values()) == 100
    )


def test_too_few_eval_posts_fit_no_temperature() -> None:
    n = 2 * MIN_FIT_POSTS - 2
    p, gold = _overconfident(n)
    temperature, report = calibrate(p, gold.tolist(), ["en"] * n, list(range(n)))
    assert temperature == 1.0 and "too few eval posts" in report["note"] and "ece" not in report
    assert calibrate(np.zeros((0, 4)), [], [], [])[0] == 1.0
