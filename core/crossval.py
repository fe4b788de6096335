"""The "others" protocol: quality on the study's ten other languages, measured on enough posts to see a gap.

test.csv has only 250 posts outside English and Spanish (a 4-class macro-F1 interval of about +-0.07). The protocol
adds k-fold cross-validation over train.csv's 750 other-language posts: fold i trains on all of train.csv except
its share of those posts and is evaluated on that share plus its share of test.csv's other-language posts. Every
one of the 1,000 posts is then predicted exactly once, by a model that never saw it; the scores of that pooled set
get bootstrap 95% intervals, overall and per language, and the folds' own scores give a mean and spread.

The leave-one-language-out protocol (`lolo_folds`) asks what a new language looks like before anyone labels it:
one fold per other language, trained on every post of train.csv in any other language and evaluated on that
language's posts of both files. Its folds' mean is the mean over languages.

Shared by the worker's experiment (LoRA, encoder) and the web side's (the fast model); pure numpy. The
tables the CLIs print of a run are in core/protocol_tables.py."""

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from core.ensemble_weights import cross_fitted
from core.labels import LABELS
from core.metrics import IntArray, macro_f1, stance_f1, topic_f1
from core.pooling import POOLING, pool
from core.study import MAIN_LANGUAGES, StudyPost

METRICS = ("four_class", "topic", "stance")


@dataclass(frozen=True)
class Fold:
    index: int
    train: list[StudyPost]
    """All of train.csv but this fold's share of its other-language posts."""
    evaluate: list[StudyPost]
    """This fold's share of train.csv's and test.csv's other-language posts."""


def _deal(posts: Sequence[StudyPost], folds: int, rng: random.Random) -> list[list[StudyPost]]:
    """Posts dealt into `folds` shares, language by language (each share gets a language's posts in turn)."""
    shares: list[list[StudyPost]] = [[] for _ in range(folds)]
    by_language: dict[str, list[StudyPost]] = defaultdict(list)
    for post in posts:
        by_language[post.language].append(post)
    turn = 0
    for language in sorted(by_language):
        group = list(by_language[language])
        rng.shuffle(group)
        for post in group:
            shares[turn % folds].append(post)
            turn += 1
    return shares


def others_folds(
    train: Sequence[StudyPost], test: Sequence[StudyPost], folds: int = 5, seed: int = 0
) -> list[Fold]:
    """The protocol's folds. English and Spanish posts of train.csv are in every fold's training set."""
    if folds < 2:
        raise ValueError("cross-validation needs at least 2 folds")
    rng = random.Random(seed)
    main = [p for p in train if p.language in MAIN_LANGUAGES]
    train_shares = _deal([p for p in train if p.language not in MAIN_LANGUAGES], folds, rng)
    test_shares = _deal([p for p in test if p.language not in MAIN_LANGUAGES], folds, rng)
    if not any(train_shares) and not any(test_shares):
        raise ValueError("no posts outside English and Spanish: the protocol has nothing to evaluate")
    return [
        Fold(
            index=i,
            train=main + [p for j, share in enumerate(train_shares) if j != i for p in share],
            evaluate=train_shares[i] + test_shares[i],
        )
        for i in range(folds)
    ]


def lolo_folds(
    train: Sequence[StudyPost], test: Sequence[StudyPost], only: Sequence[str] | None = None
) -> list[Fold]:
    """One fold per language outside English and Spanish (alphabetical; `only` these, if given): trained on
    train.csv without that language, evaluated on its posts of train.csv and test.csv."""
    found = {p.language for p in [*train, *test]} - MAIN_LANGUAGES
    if only:
        unknown = sorted(set(only) - found)
        if unknown:
            raise ValueError(f"no posts in {', '.join(unknown)} outside English and Spanish to leave out")
        found = set(only)
    languages = sorted(found)
    if not languages:
        raise ValueError("no posts outside English and Spanish: the protocol has nothing to evaluate")
    return [
        Fold(
            index=i,
            train=[p for p in train if p.language != language],
            evaluate=[p for p in [*train, *test] if p.language == language],
        )
        for i, language in enumerate(languages)
    ]


PROTOCOLS = ("others", "lolo")
"""The cross-validation protocols: k folds over the other languages, or one language left out at a time."""


def protocol_folds(
    protocol: str,
    train: Sequence[StudyPost],
    test: Sequence[StudyPost],
    folds: int = 5,
    seed: int = 0,
    languages: Sequence[str] | None = None,
) -> list[Fold]:
    """The folds of `protocol` (PROTOCOLS); `folds` and `seed` are the others protocol's, `languages` (the ones
    to leave out, default all) lolo's."""
    if protocol == "others":
        return others_folds(train, test, folds, seed)
    if protocol == "lolo":
        return lolo_folds(train, test, languages)
    raise ValueError(f"unknown protocol '{protocol}': use {' or '.join(PROTOCOLS)}")


def scores(gold: IntArray, predicted: IntArray) -> dict[str, float]:
    return {
        "four_class": macro_f1(gold, predicted, range(len(LABELS))),
        "topic": topic_f1(gold, predicted),
        "stance": stance_f1(gold, predicted),
    }


def with_intervals(gold: IntArray, predicted: IntArray, resamples: int, seed: int) -> dict[str, Any]:
    """n, each metric and its 95% percentile bootstrap interval over posts."""
    point = scores(gold, predicted)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {metric: [] for metric in METRICS}
    for idx in rng.integers(0, len(gold), size=(resamples, len(gold))):
        for metric, value in scores(gold[idx], predicted[idx]).items():
            draws[metric].append(value)
    result: dict[str, Any] = {"n": len(gold)}
    for metric in METRICS:
        low, high = np.percentile(draws[metric], [2.5, 97.5])
        result[metric] = round(point[metric], 4)
        result[f"{metric}_ci95"] = [round(float(low), 4), round(float(high), 4)]
    return result


def protocol_report(
    gold: Sequence[str],
    predicted: Sequence[str],
    languages: Sequence[str],
    fold_of: Sequence[int],
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """{"pooled": scores with intervals, "languages": {...}, "folds": {"mean": ..., "sd": ...}} over the posts
    the folds evaluated, one prediction each."""
    g = np.array([LABELS.index(x) for x in gold], dtype=np.int64)
    p = np.array([LABELS.index(x) for x in predicted], dtype=np.int64)
    langs, folds = np.array(languages, dtype=np.str_), np.array(fold_of)
    per_fold = [scores(g[folds == i], p[folds == i]) for i in sorted(set(fold_of))]
    return {
        "pooled": with_intervals(g, p, resamples, seed),
        "languages": {
            language: with_intervals(g[langs == language], p[langs == language], resamples, seed)
            for language in sorted(set(languages))
        },
        "folds": {
            "k": len(per_fold),
            "mean": {m: round(float(np.mean([f[m] for f in per_fold])), 4) for m in METRICS},
            "sd": {  # one fold (a single language left out) has no spread
                m: round(float(np.std([f[m] for f in per_fold], ddof=1)), 4) if len(per_fold) > 1 else 0.0
                for m in METRICS
            },
        },
        "predicted": {label: int(np.sum(p == i)) for i, label in enumerate(LABELS)},
        "posts": {"gold": list(gold), "predicted": list(predicted), "languages": list(languages)},
    }


def paired_difference(
    gold: Sequence[str],
    first: Sequence[str],
    second: Sequence[str],
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """second minus first on the same posts, each metric with a 95% interval from resampling the posts once for
    both (a paired bootstrap: far narrower than comparing two separate intervals)."""
    g = np.array([LABELS.index(x) for x in gold], dtype=np.int64)
    a = np.array([LABELS.index(x) for x in first], dtype=np.int64)
    b = np.array([LABELS.index(x) for x in second], dtype=np.int64)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {metric: [] for metric in METRICS}
    for idx in rng.integers(0, len(g), size=(resamples, len(g))):
        before, after = scores(g[idx], a[idx]), scores(g[idx], b[idx])
        for metric in METRICS:
            draws[metric].append(after[metric] - before[metric])
    point_a, point_b = scores(g, a), scores(g, b)
    result: dict[str, dict[str, Any]] = {}
    for metric in METRICS:
        low, high = np.percentile(draws[metric], [2.5, 97.5])
        result[metric] = {
            "difference": round(point_b[metric] - point_a[metric], 4),
            "ci95": [round(float(low), 4), round(float(high), 4)],
        }
    return result


def run_folds(
    folds: Sequence[Fold], predict: Callable[[Fold], NDArray[np.float32]], resamples: int = 1000
) -> dict[str, Any]:
    """The protocol's loop for any model: `predict` trains on a fold's training posts and returns its
    probabilities (LABELS order) for the fold's evaluated posts; the pooled predictions are scored by
    protocol_report, and the probabilities kept with them (so that runs can be averaged: ensemble_report)."""
    gold: list[str] = []
    languages: list[str] = []
    fold_of: list[int] = []
    probabilities: list[NDArray[np.float32]] = []
    for fold in folds:
        fold_probabilities = np.asarray(predict(fold), dtype=np.float32)
        if fold_probabilities.shape != (len(fold.evaluate), len(LABELS)):
            raise ValueError(f"fold {fold.index}: probabilities of shape {fold_probabilities.shape}")
        probabilities.append(fold_probabilities)
        gold += [p.label for p in fold.evaluate]
        languages += [p.language for p in fold.evaluate]
        fold_of += [fold.index] * len(fold.evaluate)
    return _report_with_probabilities(gold, np.concatenate(probabilities), languages, fold_of, resamples)


def _report_with_probabilities(
    gold: list[str],
    probabilities: NDArray[np.float32],
    languages: list[str],
    fold_of: list[int],
    resamples: int,
) -> dict[str, Any]:
    predicted = [LABELS[i] for i in probabilities.argmax(axis=1)]
    report = protocol_report(gold, predicted, languages, fold_of, resamples)
    report["posts"] |= {"fold": list(fold_of), "probabilities": np.round(probabilities, 5).tolist()}
    return report


def ensemble_report(
    reports: Sequence[dict[str, Any]], rule: str = POOLING, resamples: int = 1000
) -> dict[str, Any]:
    """The protocol's report of the models' pooled probabilities (core.pooling.pool, by default as an ensemble
    version pools them): runs on the same posts and folds (each post predicted by models that never saw it, so the
    pool never saw it either)."""
    _same_posts(reports)
    first = reports[0]["posts"]
    pooled = pool([np.asarray(r["posts"]["probabilities"], dtype=np.float32) for r in reports], rule)
    return _report_with_probabilities(
        first["gold"], pooled.astype(np.float32), first["languages"], first["fold"], resamples
    )


def weighted_report(reports: Sequence[dict[str, Any]], resamples: int = 1000) -> dict[str, Any]:
    """The protocol's report of the runs pooled as an ensemble version weighs its members
    (core.ensemble_weights): each fold's posts with per-language weights fitted on the other folds' posts, which
    stand in for a project's eval split (under leave-one-language-out a fold's language is in no other fold, so it
    is pooled as a language without eval labels). A run's `backend` says which is the fast model."""
    _same_posts(reports)
    first = reports[0]["posts"]
    pooled = cross_fitted(
        [np.asarray(r["posts"]["probabilities"], dtype=np.float64) for r in reports],
        [LABELS.index(x) for x in first["gold"]],
        list(first["languages"]),
        [str(r.get("backend", "")) for r in reports],
        fold_of=first["fold"],
    )
    return _report_with_probabilities(
        first["gold"], pooled.astype(np.float32), first["languages"], first["fold"], resamples
    )


def _same_posts(reports: Sequence[dict[str, Any]]) -> None:
    """Runs can be pooled only when each kept its probabilities of the same posts in the same folds."""
    if not reports:
        raise ValueError("no runs to average")
    first = reports[0]["posts"]
    for report in reports:
        posts = report["posts"]
        if "probabilities" not in posts:
            raise ValueError("a run without probabilities (saved before they were kept) cannot be averaged")
        if posts["gold"] != first["gold"] or posts["fold"] != first["fold"]:
            raise ValueError("runs evaluated on different posts or folds cannot be averaged")
