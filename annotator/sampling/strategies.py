"""Sampling strategies by versioned name: one registry entry each, with its score function, the stored score that
orders the database's candidates the same way, and its label on the Sampling page.

The scores are small-text's query strategies (LeastConfidence, PredictionEntropy, BreakingTies) over a probability
matrix of shape (n_posts, 4), columns in LABELS order; higher = ask sooner. Every predictions row stores confidence,
margin and entropy with an index each (db/models.py), so a strategy that orders by one of them reads only the posts
it takes. A new strategy whose score is none of those three needs a stored column (and migration) of its own."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from annotator.errors import LingualoopError
from db.models import Prediction

Score = Callable[[NDArray[np.float64], int], NDArray[np.float64]]


@dataclass(frozen=True)
class Strategy:
    name: str
    """Versioned: a changed formula gets a new version, so recorded batches stay explainable."""
    label: str
    """What the Sampling page calls it."""
    score: Score
    """Probabilities (n_posts, 4) and a seed -> one score per post; higher = ask sooner."""
    stored_order: Any | None
    """ORDER BY on the stored scores giving the same ranking (None: random order, no model needed)."""


def _random(p: NDArray[np.float64], seed: int) -> NDArray[np.float64]:
    return np.random.default_rng(seed).random(len(p))


def _least_confidence(p: NDArray[np.float64], seed: int) -> NDArray[np.float64]:
    return 1.0 - p.max(axis=1)  # type: ignore[no-any-return]


def _entropy(p: NDArray[np.float64], seed: int) -> NDArray[np.float64]:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)  # type: ignore[no-any-return]


def _breaking_ties(p: NDArray[np.float64], seed: int) -> NDArray[np.float64]:
    top_two = np.sort(p, axis=1)[:, -2:]
    return -(top_two[:, 1] - top_two[:, 0])  # a small margin between the two best labels


REGISTRY: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("random.v1", "Random (a baseline)", _random, None),
        Strategy(
            "least_confidence.v1",
            "Least confidence: the posts whose best label is least likely",
            _least_confidence,
            Prediction.confidence.asc(),
        ),
        Strategy(
            "entropy.v1",
            "Entropy: the posts whose four probabilities are most even",
            _entropy,
            Prediction.entropy.desc(),
        ),
        Strategy(
            "breaking_ties.v1",
            "Breaking ties: the posts whose two best labels are closest (recommended)",
            _breaking_ties,
            Prediction.margin.asc(),
        ),
    )
}
STRATEGIES = tuple(REGISTRY)
DEFAULT_STRATEGY = "breaking_ties.v1"


def get_strategy(name: str) -> Strategy:
    try:
        return REGISTRY[name]
    except KeyError:
        raise LingualoopError(
            f"Unknown sampling strategy '{name}': use one of {', '.join(STRATEGIES)}."
        ) from None


def uncertainty(strategy: str, probabilities: NDArray[np.floating], seed: int = 0) -> NDArray[np.float64]:
    """Higher = ask sooner. `probabilities` has shape (n_posts, 4), columns in LABELS order."""
    return get_strategy(strategy).score(np.asarray(probabilities, dtype=np.float64), seed)
