"""Dawid-Skene with controls, the Wilson interval and the reliability flag (core/reliability.py), against known
answers, simulated confusions and crowd-kit's DawidSkene."""

from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray

from core.reliability import (
    MIN_CONTROL_ANSWERS,
    MODEL_VOTER,
    ReliabilityFit,
    dawid_skene,
    estimated_accuracy,
    peer_accuracy,
    reliability_flag,
    wilson_interval,
    with_model_votes,
)

Annotator = Callable[[int], int]


def simulate(
    truth: NDArray[np.int64], annotators: dict[str, Annotator], overlap: int | None = None, seed: int = 0
) -> list[tuple[int, str, int]]:
    """Every item answered by each annotator (or by `overlap` of them at random)."""
    rng = np.random.default_rng(seed)
    names = list(annotators)
    answers = []
    for item, true in enumerate(truth.tolist()):
        chosen = names if overlap is None else rng.choice(names, size=overlap, replace=False).tolist()
        answers += [(item, name, annotators[name](true)) for name in chosen]
    return answers


def careful(rng: np.random.Generator, right: float = 0.9) -> Annotator:
    return lambda true: true if rng.random() < right else int(rng.integers(4))


def confused(rng: np.random.Generator) -> Annotator:
    """Swaps pro (0) and neutral (2) 40% of the time, else 90% right."""

    def answer(true: int) -> int:
        if true in (0, 2) and rng.random() < 0.4:
            return 2 - true
        return true if rng.random() < 0.9 else int(rng.integers(4))

    return answer


def posterior_labels(fit: ReliabilityFit[int, str], n: int) -> NDArray[np.int64]:
    return np.array([int(np.argmax(fit.posteriors[i])) for i in range(n)])


def test_a_perfect_annotator_set_gives_the_gold_labels() -> None:
    truth = np.random.default_rng(1).integers(4, size=200)
    answers = [(i, w, int(t)) for i, t in enumerate(truth) for w in ("ana", "ben", "chloe")]
    fit = dawid_skene(answers)
    assert (posterior_labels(fit, 200) == truth).all()
    assert all(max(fit.posteriors[i]) > 0.99 for i in range(200))
    for worker in ("ana", "ben", "chloe"):
        assert fit.accuracy_of(worker) > 0.95
        assert np.allclose(fit.confusion[worker].sum(axis=1), 1.0)


def test_a_known_confusion_is_recovered_within_a_tolerance() -> None:
    rng = np.random.default_rng(2)
    truth = rng.choice(4, size=3000, p=[0.2, 0.15, 0.15, 0.5])
    answers = simulate(truth, {"careful": careful(rng), "other": careful(rng), "confused": confused(rng)})
    fit = dawid_skene(answers)
    expected = np.full((4, 4), 0.1 / 4) + np.eye(4) * 0.9
    expected[0] = [0.6 * 0.9 + 0.6 * 0.025, 0.6 * 0.025, 0.4 + 0.6 * 0.025, 0.6 * 0.025]
    expected[2] = [0.4 + 0.6 * 0.025, 0.6 * 0.025, 0.6 * 0.9 + 0.6 * 0.025, 0.6 * 0.025]
    assert np.abs(fit.confusion["confused"] - expected).max() < 0.05
    careful_expected = np.full((4, 4), 0.025) + np.eye(4) * 0.9
    assert np.abs(fit.confusion["careful"] - careful_expected).max() < 0.05
    assert np.abs(fit.priors - [0.2, 0.15, 0.15, 0.5]).max() < 0.03


def test_controls_anchor_which_of_two_disagreeing_annotators_is_confused() -> None:
    """Two annotators only: "swapper" gives pro for neutral and neutral for pro every time. Without gold the
    model cannot tell which one is right; with a few controls it knows, and follows the right one."""
    rng = np.random.default_rng(3)
    truth = rng.choice(4, size=400)
    swap = {0: 2, 2: 0}
    answers = [(i, "right", int(t)) for i, t in enumerate(truth)]
    answers += [(i, "swapper", swap.get(int(t), int(t))) for i, t in enumerate(truth)]
    gold = {i: int(truth[i]) for i in range(0, 400, 20)}
    fit = dawid_skene(answers, gold)
    assert fit.accuracy_of("right") > 0.9
    assert fit.accuracy_of("swapper") < 0.7
    assert fit.confusion["swapper"][0, 2] > 0.8  # true pro, given neutral
    unclamped = [i for i in range(400) if i not in gold]
    assert (posterior_labels(fit, 400)[unclamped] == truth[unclamped]).mean() > 0.98
    for item, label in gold.items():
        assert fit.posteriors[item][label] == 1.0


def test_works_on_odd_shapes() -> None:
    assert dawid_skene([]).posteriors == {}
    assert dawid_skene([]).iterations == 0
    one = dawid_skene([("post", ("user", 7), 3)])
    assert int(np.argmax(one.posteriors["post"])) == 3
    assert np.allclose(one.confusion[("user", 7)].sum(axis=1), 1.0)
    # a worker with two answers keeps a row near "mostly right", not 0s and 1s
    assert 0.5 < one.confusion[("user", 7)][0, 0] < 0.9
    all_gold = dawid_skene([("a", "w", 1), ("b", "w", 2)], {"a": 1, "b": 0, "unanswered": 3})
    assert all_gold.posteriors["a"] == (0.0, 1.0, 0.0, 0.0)
    assert all_gold.posteriors["b"] == (1.0, 0.0, 0.0, 0.0)
    assert "unanswered" not in all_gold.posteriors
    assert dawid_skene([("a", "w", 1)], n_classes=2).confusion["w"].shape == (2, 2)
    with pytest.raises(ValueError, match="class indices"):
        dawid_skene([("a", "w", 4)])


@pytest.mark.filterwarnings("ignore::Warning:crowdkit")
def test_agrees_with_crowd_kit_without_gold() -> None:
    pd = pytest.importorskip("pandas")
    aggregation = pytest.importorskip("crowdkit.aggregation")
    rng = np.random.default_rng(4)
    truth = rng.choice(4, size=800, p=[0.2, 0.15, 0.15, 0.5])
    annotators = {"a": careful(rng), "b": careful(rng, 0.8), "c": confused(rng), "d": careful(rng, 0.5)}
    answers = simulate(truth, annotators, overlap=3, seed=4)
    ours = posterior_labels(dawid_skene(answers), len(truth))
    frame = pd.DataFrame(answers, columns=["task", "worker", "label"])
    theirs = aggregation.DawidSkene(n_iter=100).fit_predict(frame).sort_index().to_numpy()
    assert (ours == theirs).mean() >= 0.95
    assert (ours == truth).mean() > 0.85


def test_estimated_accuracy_weights_the_diagonal_by_the_class_shares() -> None:
    confusion = np.array([[0.9, 0.1], [0.5, 0.5]])
    assert estimated_accuracy(confusion, np.array([0.5, 0.5])) == pytest.approx(0.7)
    assert estimated_accuracy(confusion, np.array([3.0, 1.0])) == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("correct", "total", "low", "high"),
    [
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (5, 10, 0.2366, 0.7634),
        (81, 263, 0.2553, 0.3662),  # Wilson (1927)'s worked example, as in Newcombe (1998)
    ],
)
def test_wilson_interval_matches_known_values(correct: int, total: int, low: float, high: float) -> None:
    got = wilson_interval(correct, total)
    assert got == pytest.approx((low, high), abs=1e-3)


def test_wilson_interval_without_answers_is_everything() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_the_flag_on_clear_cases() -> None:
    spammer = reliability_flag(3, 20, None, None)
    assert spammer is not None and "3 of 20" in spammer
    assert reliability_flag(18, 20, 0.9, 0.9) is None
    # below the minimum, controls alone say nothing
    assert reliability_flag(0, MIN_CONTROL_ANSWERS - 1, None, None) is None
    assert reliability_flag(0, MIN_CONTROL_ANSWERS, None, None) is not None
    model = reliability_flag(0, 0, 0.3, 0.9, answers=60)
    assert model is not None and "30%" in model and "90%" in model
    assert reliability_flag(0, 0, 0.3, 0.9, answers=5) is None  # too few answers to trust the model
    assert reliability_flag(0, 0, 0.78, 0.9, answers=60) is None  # a little below is not "far below"
    assert reliability_flag(0, 0, 0.3, None, answers=60) is None  # nobody to compare with


def test_peer_accuracy_is_the_median_of_the_others() -> None:
    assert peer_accuracy({"a": 0.2, "b": 0.9, "c": 0.7, "d": 0.8}, "a") == pytest.approx(0.8)
    assert peer_accuracy({"a": 0.2}, "a") is None


def test_the_model_votes_where_two_annotators_answered_or_on_a_control() -> None:
    answers = [("both", 1, 0), ("both", 2, 2), ("lone", 1, 3), ("control", 1, 1), ("same twice", 1, 0)]
    answers.append(("same twice", 1, 0))  # one annotator twice is still one annotator
    votes = {"both": 2, "lone": 0, "control": 1, "same twice": 2, "unanswered": 1}
    added = with_model_votes(answers, votes, {"control": 1})
    assert added[: len(answers)] == answers
    assert sorted(added[len(answers) :]) == [("both", MODEL_VOTER, 2), ("control", MODEL_VOTER, 1)]
