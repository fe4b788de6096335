"""Training weights per example, shared by both backends (the fast model's head and the LoRA loss): balanced by
label, and by language, so that 1,125 English posts do not drown 75 Turkish ones.

A post's weight is its label's inverse frequency times its language's share to the power -`language_power`
(0: languages as they come; 0.5: inverse square root; 1: every language the same total weight), normalised to a
mean of 1 over the training set."""

from collections import defaultdict
from collections.abc import Hashable, Sequence
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

T = TypeVar("T", bound=Hashable)

DEFAULT_LANGUAGE_POWER = 0.5
"""The default for both backends: measured with the "others" protocol (docs/experiment.md)."""


def example_weights(
    labels: Sequence[int],
    languages: Sequence[str],
    *,
    class_balance: bool = True,
    language_power: float = DEFAULT_LANGUAGE_POWER,
    confidences: Sequence[float] | None = None,
) -> NDArray[np.float64]:
    """One weight per example, mean 1. With class_balance only, each label's examples weigh n / (k * count), as
    scikit-learn's class_weight="balanced" does.

    `confidences` (one per example, 0 to 1: how sure the consensus is of the label) scale each example's weight,
    and labels and languages are counted by them, so an example of confidence 0 weighs nothing and changes no
    other example's weight: training is as if it were absent. The weights then have mean 1 over the confidence
    (they sum to the confidences' sum)."""
    if len(labels) != len(languages):
        raise ValueError(f"{len(labels)} labels but {len(languages)} languages")
    if confidences is not None and len(confidences) != len(labels):
        raise ValueError(f"{len(labels)} labels but {len(confidences)} confidences")
    if not labels:
        return np.zeros(0)
    if language_power < 0:
        raise ValueError("language_power must be 0 or more")
    mass = np.ones(len(labels)) if confidences is None else np.asarray(confidences, dtype=np.float64)
    if mass.min() < 0 or mass.max() > 1:
        raise ValueError("confidences must be between 0 and 1")
    total = float(mass.sum())
    if total == 0:
        raise ValueError("every example has confidence 0: nothing to train on")
    weights = mass.copy()
    if class_balance:
        counts = _masses(labels, mass)
        present = sum(1 for count in counts.values() if count > 0)
        weights *= np.array([total / (present * counts[label]) if counts[label] else 0.0 for label in labels])
    if language_power:
        shares = _masses(languages, mass)
        weights *= np.array(
            [
                (shares[language] / total) ** -language_power if shares[language] else 0.0
                for language in languages
            ]
        )
    normalised: NDArray[np.float64] = weights / (weights.sum() / total)
    return normalised


def loss_denominators(
    weights: NDArray[np.float64], confidences: Sequence[float] | None
) -> NDArray[np.float64]:
    """What each example adds to the denominator of a batch's weighted mean loss, sum(w * loss) / sum(these): its
    weight without its confidence (0 at confidence 0). A batch of examples the consensus is half sure of then
    moves the model half as far, instead of the weighted mean undoing the confidence; without confidences these
    are the weights themselves (the plain weighted mean)."""
    if confidences is None:
        return weights
    mass = np.asarray(confidences, dtype=np.float64)
    out: NDArray[np.float64] = np.divide(weights, mass, out=np.zeros_like(weights), where=mass > 0)
    return out


def _masses(keys: Sequence[T], mass: NDArray[np.float64]) -> dict[T, float]:
    """The summed confidence of each key."""
    found: dict[T, float] = defaultdict(float)
    for key, value in zip(keys, mass.tolist(), strict=True):
        found[key] += value
    return found
