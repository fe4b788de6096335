"""Evaluation metrics of the study, per language, in the shape stored in model_versions.metrics (the worker and the
fast model both write them): 4-class macro-F1, topic F1 (related vs unrelated), stance F1
(pro/anti/neutral on posts that are about immigration), accuracy, confusion matrix, bootstrap 95% intervals."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from core.labels import LABELS

UNRELATED = LABELS.index("unrelated")
STANCE = [LABELS.index(label) for label in ("pro", "anti", "neutral")]
IntArray = NDArray[np.int64]


def macro_f1(gold: IntArray, predicted: IntArray, classes: Sequence[int]) -> float:
    """Mean F1 over those of `classes` that occur in the gold labels or the predictions (scikit-learn's
    f1_score(average="macro") without `labels=`); a class that occurs in only one of them scores 0."""
    scores = []
    for c in classes:
        tp = int(np.sum((gold == c) & (predicted == c)))
        fp = int(np.sum((gold != c) & (predicted == c)))
        fn = int(np.sum((gold == c) & (predicted != c)))
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else 0.0


@dataclass(frozen=True)
class PairedDifference:
    """Macro-F1 of a second model's predictions minus a first's on the same posts, with its 95% interval from
    resampling the posts once for both (a paired bootstrap)."""

    posts: int
    difference: float
    low: float
    high: float


def _resampled_macro_f1(
    counts: NDArray[np.int64], gold: IntArray, predicted: IntArray, classes: int
) -> NDArray[np.float64]:
    """macro_f1 of every resample at once: `counts` (resamples, posts) is how often each post was drawn."""
    scores, present = [], []
    for c in range(classes):
        tp = counts @ ((gold == c) & (predicted == c))
        fp = counts @ ((gold != c) & (predicted == c))
        fn = counts @ ((gold == c) & (predicted != c))
        denominator = 2 * tp + fp + fn
        present.append(denominator > 0)
        scores.append(np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0))
    present_counts = np.sum(present, axis=0)
    mean: NDArray[np.float64] = np.sum(scores, axis=0) / np.maximum(present_counts, 1)
    return mean


def paired_macro_f1(
    gold: IntArray, first: IntArray, second: IntArray, classes: int, resamples: int = 1000, seed: int = 0
) -> PairedDifference:
    """PairedDifference of 4-class (or any `classes`) macro-F1: second minus first."""
    n = len(gold)
    point = macro_f1(gold, second, range(classes)) - macro_f1(gold, first, range(classes))
    if n == 0:
        return PairedDifference(0, 0.0, 0.0, 0.0)
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n), size=resamples)
    draws = _resampled_macro_f1(counts, gold, second, classes) - _resampled_macro_f1(
        counts, gold, first, classes
    )
    low, high = np.percentile(draws, [2.5, 97.5])
    return PairedDifference(n, round(point, 4), round(float(low), 4), round(float(high), 4))


def topic_f1(gold: IntArray, predicted: IntArray) -> float:
    """Macro-F1 of related (0) vs unrelated (1)."""
    return macro_f1((gold == UNRELATED).astype(np.int64), (predicted == UNRELATED).astype(np.int64), [0, 1])


def stance_f1(gold: IntArray, predicted: IntArray) -> float:
    """Macro-F1 over pro, anti, neutral on the posts whose gold label is about immigration."""
    related = gold != UNRELATED
    return macro_f1(gold[related], predicted[related], STANCE) if related.any() else 0.0


def confusion(gold: IntArray, predicted: IntArray) -> list[list[int]]:
    """Rows gold, columns predicted, both in LABELS order."""
    matrix = np.zeros((len(LABELS), len(LABELS)), dtype=np.int64)
    np.add.at(matrix, (gold, predicted), 1)
    return matrix.tolist()


def bootstrap_interval(
    gold: IntArray, predicted: IntArray, resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile interval of 4-class macro-F1 over posts resampled with replacement."""
    if len(gold) == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    classes = list(range(len(LABELS)))
    samples = rng.integers(0, len(gold), size=(resamples, len(gold)))
    scores = [macro_f1(gold[idx], predicted[idx], classes) for idx in samples]
    low, high = np.percentile(scores, [2.5, 97.5])
    return (round(float(low), 4), round(float(high), 4))


def summarise(gold: IntArray, predicted: IntArray, resamples: int = 1000) -> dict[str, Any]:
    classes = list(range(len(LABELS)))
    return {
        "n": len(gold),
        "macro_f1": round(macro_f1(gold, predicted, classes), 4),
        "macro_f1_ci95": list(bootstrap_interval(gold, predicted, resamples)),
        "topic_f1": round(topic_f1(gold, predicted), 4),
        "stance_f1": round(stance_f1(gold, predicted), 4),
        "accuracy": round(float(np.mean(gold == predicted)) if len(gold) else 0.0, 4),
        "confusion": confusion(gold, predicted),
        "predicted_labels": sorted({LABELS[i] for i in predicted.tolist()}),
    }


def evaluate_by_language(
    gold: Sequence[str], predicted: Sequence[str], languages: Sequence[str], resamples: int = 1000
) -> dict[str, Any]:
    """{"all": {...}, "languages": {"en": {...}, ...}} with the metrics above for each."""
    g = np.array([LABELS.index(label) for label in gold], dtype=np.int64)
    p = np.array([LABELS.index(label) for label in predicted], dtype=np.int64)
    langs = np.array(languages)
    result: dict[str, Any] = {"all": summarise(g, p, resamples), "languages": {}}
    for language in sorted(set(languages)):
        mask = langs == language
        result["languages"][language] = summarise(g[mask], p[mask], resamples)
    return result


@dataclass(frozen=True)
class Scores:
    """One evaluation (all languages, or one) as stored by `summarise`, read back typed."""

    n: int
    macro_f1: float | None
    interval: tuple[float, float] | None
    """95% bootstrap interval of macro_f1."""
    topic_f1: float | None
    stance_f1: float | None
    accuracy: float | None
    confusion: list[list[int]] | None

    @staticmethod
    def of(raw: Any) -> "Scores | None":
        if not isinstance(raw, Mapping) or "macro_f1" not in raw:
            return None
        interval = raw.get("macro_f1_ci95")

        def number(key: str) -> float | None:
            value = raw.get(key)
            return None if value is None else float(value)

        return Scores(
            n=int(raw.get("n", 0)),
            macro_f1=number("macro_f1"),
            interval=(float(interval[0]), float(interval[1])) if interval else None,
            topic_f1=number("topic_f1"),
            stance_f1=number("stance_f1"),
            accuracy=number("accuracy"),
            confusion=raw.get("confusion"),
        )


@dataclass(frozen=True)
class VersionMetrics:
    """A model version's `metrics` JSON, read in one place: overall scores, scores per language, and the note a
    version without an eval split carries."""

    overall: Scores | None
    languages: dict[str, Scores] = field(default_factory=dict)
    note: str | None = None
    calibration: Mapping[str, Any] = field(default_factory=dict)
    """core.calibration's report: temperature, ECE before and after on the reporting half, per language."""

    @staticmethod
    def of(raw: Mapping[str, Any] | None) -> "VersionMetrics":
        raw = raw or {}
        languages = {
            code: scores
            for code, value in (raw.get("languages") or {}).items()
            if (scores := Scores.of(value)) is not None
        }
        calibration = raw.get("calibration")
        return VersionMetrics(
            Scores.of(raw.get("all")),
            languages,
            raw.get("note"),
            calibration if isinstance(calibration, Mapping) else {},
        )

    @property
    def temperature(self) -> float:
        """The temperature the version's stored probabilities were scaled with (1: none)."""
        return float(self.calibration.get("temperature", 1.0))

    @property
    def ece(self) -> float | None:
        """Expected calibration error of the stored (calibrated) probabilities on the reporting half."""
        value = self.calibration.get("ece")
        return None if value is None else float(value)

    def ece_of(self, language: str) -> float | None:
        value = (self.calibration.get("languages") or {}).get(language, {}).get("ece")
        return None if value is None else float(value)

    @property
    def macro_f1(self) -> float | None:
        return self.overall.macro_f1 if self.overall is not None else None

    def f1_of(self, language: str) -> float | None:
        scores = self.languages.get(language)
        return scores.macro_f1 if scores is not None else None
