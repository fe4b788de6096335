"""The "others" protocol: folds that see every other-language post once, scores with intervals, paired
comparisons."""

from collections.abc import Callable

import numpy as np
import pytest

from core.crossval import (
    Fold,
    ensemble_report,
    lolo_folds,
    others_folds,
    paired_difference,
    protocol_folds,
    protocol_report,
    run_folds,
    weighted_report,
)
from core.labels import LABELS
from core.pooling import pool
from core.protocol_tables import compare_runs, format_protocol_table, parse_powers
from core.study import StudyPost


def _posts(prefix: str, counts: dict[str, int]) -> list[StudyPost]:
    return [
        StudyPost(f"{prefix} {lang} {i}", lang, LABELS[i % 4]) for lang, n in counts.items() for i in range(n)
    ]


def test_each_other_language_post_is_evaluated_once_by_a_model_that_never_saw_it() -> None:
    train = _posts("train", {"en": 30, "es": 20, "tr": 15, "ar": 12})
    test = _posts("test", {"en": 10, "tr": 5, "ar": 5})
    folds = others_folds(train, test, folds=5, seed=3)
    evaluated = [p for fold in folds for p in fold.evaluate]
    others = [p for p in train + test if p.language not in ("en", "es")]
    assert sorted(p.text for p in evaluated) == sorted(p.text for p in others)  # each once
    for fold in folds:
        trained = {p.text for p in fold.train}
        assert not trained & {p.text for p in fold.evaluate}
        assert {p.text for p in train if p.language in ("en", "es")} <= trained  # always in training
        assert not any(p.text.startswith("test") for p in fold.train)  # test.csv never trains
        assert len(fold.train) == 50 + 27 - sum(1 for p in fold.evaluate if p.text.startswith("train"))
    shares = [sum(p.language == "tr" for p in fold.evaluate) for fold in folds]
    assert max(shares) - min(shares) <= 1  # each language spread evenly over the folds
    assert others_folds(train, test, 5, seed=3)[0].evaluate == folds[0].evaluate  # seeded
    with pytest.raises(ValueError, match="at least 2 folds"):
        others_folds(train, test, folds=1)
    with pytest.raises(ValueError, match="nothing to evaluate"):
        others_folds(_posts("t", {"en": 4}), [], folds=2)


def test_report_scores_the_pooled_posts_with_intervals_per_language() -> None:
    gold = ["pro", "anti", "neutral", "unrelated"] * 25
    predicted = list(gold)
    predicted[:10] = ["unrelated"] * 10  # ten mistakes, all in the first language
    languages = ["tr"] * 50 + ["ar"] * 50
    report = protocol_report(gold, predicted, languages, [i % 5 for i in range(100)], resamples=200)
    assert report["pooled"]["n"] == 100 and report["languages"]["ar"]["four_class"] == 1.0
    assert report["languages"]["tr"]["four_class"] < 1.0
    low, high = report["pooled"]["four_class_ci95"]
    assert low < report["pooled"]["four_class"] <= high
    assert (
        report["folds"]["k"] == 5 and report["predicted"]["unrelated"] == 33
    )  # 25 + 10 - the 2 already unrelated
    table = format_protocol_table("fast", report)
    assert "| **other ten** | 100 |" in table and "| ar | 50 | 1.000 [1.00, 1.00]" in table


def test_paired_difference_and_comparison() -> None:
    gold = ["pro", "anti", "neutral", "unrelated"] * 30
    worse = list(gold)
    worse[::3] = ["unrelated"] * len(worse[::3])
    same = paired_difference(gold, gold, gold, resamples=100)
    assert same["four_class"] == {"difference": 0.0, "ci95": [0.0, 0.0]}
    better = paired_difference(gold, worse, gold, resamples=200)
    assert better["four_class"]["difference"] > 0 and better["four_class"]["ci95"][0] > 0
    reports = [protocol_report(gold, p, ["tr"] * len(gold), [0, 1] * 60, resamples=50) for p in (worse, gold)]
    table = compare_runs(["A", "B"], reports)
    assert "| against A |" in table and "| B | +" in table
    assert compare_runs(["A"], reports[:1]) == ""


def test_language_powers_are_parsed_or_refused() -> None:
    assert parse_powers(None, 0.5) == [0.5] and parse_powers("0, 0.5,1", 0.5) == [0.0, 0.5, 1.0]
    for bad in ("x", "-1", ","):
        with pytest.raises(ValueError, match="--language-power"):
            parse_powers(bad, 0.5)


def test_runs_keep_their_probabilities_and_average_into_an_ensemble() -> None:
    train = _posts("train", {"en": 20, "tr": 20, "ar": 20})
    folds = others_folds(train, [], folds=4, seed=0)
    gold = {p.text: LABELS.index(p.label) for p in train}

    def model(right_every: int) -> "object":
        def predict(fold: Fold) -> np.ndarray:
            # Confidently right on every `right_every`-th post, otherwise leaning to the next label.
            result = np.full((len(fold.evaluate), 4), 0.1, dtype=np.float32)
            for row, post in enumerate(fold.evaluate):
                truth = gold[post.text]
                result[row, truth if row % right_every == 0 else (truth + 1) % 4] = 0.7
            return result

        return predict

    first, second = run_folds(folds, model(2)), run_folds(folds, model(3))  # type: ignore[arg-type]
    assert len(first["posts"]["probabilities"]) == 40 and first["posts"]["fold"][0] == 0
    both = ensemble_report([first, second])
    assert both["posts"]["gold"] == first["posts"]["gold"]
    pair = [first["posts"]["probabilities"], second["posts"]["probabilities"]]
    assert both["posts"]["predicted"] == [LABELS[i] for i in np.mean(pair, axis=0).argmax(axis=1)]
    geometric = ensemble_report([first, second], "geometric")
    assert geometric["posts"]["predicted"] == [LABELS[i] for i in pool(pair, "geometric").argmax(axis=1)]
    assert ensemble_report([first])["pooled"]["four_class"] == first["pooled"]["four_class"]
    with pytest.raises(ValueError, match="different posts"):
        ensemble_report([first, run_folds(others_folds(train, [], folds=4, seed=1), model(2))])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="probabilities of shape"):
        run_folds(folds, lambda fold: np.zeros((1, 4), dtype=np.float32))


def test_leaving_one_language_out_trains_on_every_other_language() -> None:
    train = _posts("train", {"en": 6, "es": 4, "tr": 5, "ar": 3})
    test = _posts("test", {"en": 2, "tr": 2, "ar": 1, "ko": 2})
    folds = lolo_folds(train, test)
    assert [{p.language for p in f.evaluate} for f in folds] == [{"ar"}, {"ko"}, {"tr"}]  # one each, sorted
    ar, ko, tr = folds
    assert len(ar.evaluate) == 4 and len(ko.evaluate) == 2 and len(tr.evaluate) == 7  # both files' posts
    assert {p.language for p in ar.train} == {"en", "es", "tr"} and len(ar.train) == 15  # train.csv only
    assert len(ko.train) == len(train)  # a language only test.csv has: trained on everything
    assert protocol_folds("lolo", train, test) == folds
    assert protocol_folds("others", train, test, 2) == others_folds(train, test, 2)
    with pytest.raises(ValueError, match="unknown protocol 'loo'"):
        protocol_folds("loo", train, test)
    with pytest.raises(ValueError, match="nothing to evaluate"):
        lolo_folds(_posts("t", {"en": 4}), [])


def test_the_weighted_report_pools_a_left_out_language_without_the_fast_model() -> None:
    """Under leave-one-language-out a fold's language is in no other fold: the fast run gets no weight there, so
    the pool is the other run; under the others protocol the weights come from the other folds' posts."""
    train = _posts("train", {"en": 8, "tr": 40, "ar": 40})
    folds = lolo_folds(train, [])

    def model(right: bool) -> Callable[[Fold], np.ndarray]:
        def predict(fold: Fold) -> np.ndarray:
            gold = np.eye(4)[[LABELS.index(p.label) for p in fold.evaluate]]
            wrong = np.roll(gold, 1, axis=1)
            return (0.7 * (gold if right else wrong) + 0.3 / 4).astype(np.float32)

        return predict

    fast = run_folds(folds, model(False), resamples=20) | {"backend": "fast"}
    encoder = run_folds(folds, model(True), resamples=20) | {"backend": "encoder"}
    assert weighted_report([fast, encoder], resamples=20)["pooled"]["four_class"] == 1.0
    assert (
        ensemble_report([fast, encoder], resamples=20)["pooled"]["four_class"] < 1.0
    )  # a tie: argmax's pick
    others = others_folds(train, [], folds=4, seed=0)
    fast = run_folds(others, model(False), resamples=20) | {"backend": "fast"}
    lora = run_folds(others, model(True), resamples=20) | {"backend": "lora"}
    # Both seen everywhere: the weights learnt on the other folds lean on the run that is right.
    assert weighted_report([fast, lora], resamples=20)["pooled"]["four_class"] == 1.0
