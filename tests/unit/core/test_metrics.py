import numpy as np
import pytest

from core.metrics import (
    VersionMetrics,
    bootstrap_interval,
    evaluate_by_language,
    macro_f1,
    stance_f1,
    topic_f1,
)

G = np.array([0, 1, 2, 3, 3, 0], dtype=np.int64)
P = np.array([0, 2, 2, 3, 0, 0], dtype=np.int64)


def test_macro_f1_by_hand() -> None:
    # pro: tp2 fp1 fn0 -> 0.8; anti: tp0 fn1 -> 0; neutral: tp1 fp1 -> 2/3; unrelated: tp1 fn1 -> 2/3.
    assert macro_f1(G, P, range(4)) == pytest.approx((0.8 + 0 + 2 / 3 + 2 / 3) / 4)


def test_topic_and_stance() -> None:
    # Topic: related {0,1,2,5} vs unrelated {3,4}; predicted unrelated only at 3.
    assert topic_f1(G, P) == pytest.approx((2 * 4 / (2 * 4 + 1) + 2 / 3) / 2)
    # Stance only on gold-related posts 0,1,2,5: pro 1.0, anti 0, neutral 2/3.
    assert stance_f1(G, P) == pytest.approx((1.0 + 0 + 2 / 3) / 3)


def test_bootstrap_interval_brackets_the_estimate() -> None:
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 4, 200)
    predicted = np.where(rng.random(200) < 0.7, gold, rng.integers(0, 4, 200))
    low, high = bootstrap_interval(gold, predicted, resamples=300)
    assert low < macro_f1(gold, predicted, range(4)) < high and high - low < 0.2


def test_per_language() -> None:
    result = evaluate_by_language(
        ["pro", "anti", "pro", "unrelated"],
        ["pro", "anti", "anti", "unrelated"],
        ["en", "en", "hu", "hu"],
        resamples=50,
    )
    assert result["languages"]["en"]["macro_f1"] == 1.0 and result["languages"]["hu"]["n"] == 2
    assert result["all"]["confusion"][0] == [1, 1, 0, 0]
    assert result["all"]["predicted_labels"] == ["anti", "pro", "unrelated"]


def test_version_metrics_read_back_what_evaluation_stored() -> None:
    stored = evaluate_by_language(
        ["pro", "anti", "pro", "unrelated"],
        ["pro", "pro", "pro", "unrelated"],
        ["en", "en", "tr", "tr"],
        resamples=50,
    )
    metrics = VersionMetrics.of(stored)
    assert metrics.overall is not None and metrics.macro_f1 == stored["all"]["macro_f1"]
    assert metrics.overall.interval == tuple(stored["all"]["macro_f1_ci95"])
    assert metrics.overall.confusion == stored["all"]["confusion"] and metrics.overall.n == 4
    assert (
        set(metrics.languages) == {"en", "tr"}
        and metrics.f1_of("tr") == stored["languages"]["tr"]["macro_f1"]
    )
    assert metrics.f1_of("ko") is None
    empty = VersionMetrics.of({"note": "no labelled posts in the eval split"})
    assert empty.overall is None and empty.macro_f1 is None and empty.note is not None
    assert VersionMetrics.of(None).languages == {}
