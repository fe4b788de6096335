"""Temperature scaling and expected calibration error (ECE), fitted per model version on its eval split.

A version's probabilities p become softmax(log p / T): T > 1 softens an over-confident model, T < 1 sharpens an
under-confident one, and the argmax (so every F1) is unchanged. T is fitted on one half of the eval posts (a fixed
split by item id) by minimising the negative log-likelihood, and the ECE is reported on the other half, before
and after, overall and per language. Both backends write calibrated probabilities, so the sampler's uncertainty,
the suggestion an annotator sees and the findings all read calibrated numbers."""

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
MIN_FIT_POSTS = 20
"""Fewer eval posts in the fitting half than this: no temperature is fitted (T = 1)."""
BOUNDS = (0.25, 10.0)
"""The temperatures searched."""
BINS = 10


def apply_temperature(probabilities: NDArray[Any], temperature: float) -> NDArray[np.float32]:
    """softmax(log p / T), row by row; T = 1 returns the probabilities as they are."""
    p: FloatArray = np.asarray(probabilities, dtype=np.float64)
    if temperature == 1.0 or len(p) == 0:
        unchanged: NDArray[np.float32] = p.astype(np.float32)
        return unchanged
    logits = np.log(np.clip(p, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled: FloatArray = np.exp(logits)
    calibrated: NDArray[np.float32] = (scaled / scaled.sum(axis=1, keepdims=True)).astype(np.float32)
    return calibrated


def negative_log_likelihood(
    probabilities: NDArray[Any], gold: NDArray[np.int64], temperature: float
) -> float:
    scaled = apply_temperature(probabilities, temperature).astype(np.float64)
    return float(-np.mean(np.log(np.clip(scaled[np.arange(len(gold)), gold], 1e-12, 1.0))))


def fit_temperature(probabilities: NDArray[Any], gold: NDArray[np.int64]) -> float:
    """The T in BOUNDS with the lowest negative log-likelihood: a grid over log T, then golden-section search
    around the best grid point (the likelihood is unimodal in log T)."""
    if len(gold) == 0:
        return 1.0
    low, high = math.log(BOUNDS[0]), math.log(BOUNDS[1])
    grid = np.linspace(low, high, 41)
    losses = [negative_log_likelihood(probabilities, gold, math.exp(x)) for x in grid]
    best = int(np.argmin(losses))
    a, b = grid[max(0, best - 1)], grid[min(len(grid) - 1, best + 1)]
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(30):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if negative_log_likelihood(probabilities, gold, math.exp(c)) < negative_log_likelihood(
            probabilities, gold, math.exp(d)
        ):
            b = d
        else:
            a = c
    return round(math.exp((a + b) / 2), 4)


def expected_calibration_error(
    probabilities: NDArray[Any], gold: NDArray[np.int64], bins: int = BINS
) -> float:
    """The confidence-weighted gap between confidence and accuracy over equal-width confidence bins."""
    if len(gold) == 0:
        return 0.0
    p = np.asarray(probabilities, dtype=np.float64)
    confidence, correct = p.max(axis=1), (p.argmax(axis=1) == gold).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            error += mask.mean() * abs(confidence[mask].mean() - correct[mask].mean())
    return round(float(error), 4)


def fitting_half(item_ids: Sequence[int], languages: Sequence[str]) -> NDArray[np.bool_]:
    """Which eval posts fit the temperature (the rest report on it): within each language, every other post in
    item id order, so that each language is in both halves and the split is the same each time."""
    ids, langs = np.asarray(item_ids), np.asarray(languages)
    mask = np.zeros(len(ids), dtype=bool)
    for language in set(langs.tolist()):
        positions = np.flatnonzero(langs == language)
        mask[positions[np.argsort(ids[positions], kind="stable")][::2]] = True
    return mask


def calibrate(
    probabilities: NDArray[Any], gold: Sequence[int], languages: Sequence[str], item_ids: Sequence[int]
) -> tuple[float, dict[str, Any]]:
    """(temperature, report): T fitted on one half of the eval posts, ECE before and after on the other half,
    overall and per language (languages with posts in the reporting half)."""
    g = np.asarray(gold, dtype=np.int64)
    fit = fitting_half(item_ids, languages)
    if int(fit.sum()) < MIN_FIT_POSTS:
        return 1.0, {
            "temperature": 1.0,
            "note": f"too few eval posts to fit a temperature (under {2 * MIN_FIT_POSTS})",
        }
    p = np.asarray(probabilities, dtype=np.float64)
    temperature = fit_temperature(p[fit], g[fit])
    report_mask = ~fit
    langs = np.asarray(languages)
    before, after = p[report_mask], apply_temperature(p[report_mask], temperature)
    per_language = {}
    for language in sorted(set(langs[report_mask].tolist())):
        mask = langs[report_mask] == language
        per_language[language] = {
            "n": int(mask.sum()),
            "ece_before": expected_calibration_error(before[mask], g[report_mask][mask]),
            "ece": expected_calibration_error(after[mask], g[report_mask][mask]),
        }
    return temperature, {
        "temperature": temperature,
        "fitted_on": int(fit.sum()),
        "reported_on": int(report_mask.sum()),
        "ece_before": expected_calibration_error(before, g[report_mask]),
        "ece": expected_calibration_error(after, g[report_mask]),
        "languages": per_language,
    }
