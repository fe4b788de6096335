"""Training weights per example, shared by both backends (the fast model's head and the LoRA loss): balanced by
label, and by language, so that 1,125 English posts do not drown 75 Turkish ones.

A post's weight is its label's inverse frequency times its language's share to the power -`language_power`
(0: languages as they come; 0.5: inverse square root; 1: every language the same total weight), normalised to a
mean of 1 over the training set."""

from collections import Counter
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

DEFAULT_LANGUAGE_POWER = 0.5
"""The default for both backends: measured with the "others" protocol (docs/experiment.md)."""


def example_weights(
    labels: Sequence[int],
    languages: Sequence[str],
    *,
    class_balance: bool = True,
    language_power: float = DEFAULT_LANGUAGE_POWER,
) -> NDArray[np.float64]:
    """One weight per example, mean 1. With class_balance only, each label's examples weigh n / (k * count), as
    scikit-learn's class_weight="balanced" does."""
    if len(labels) != len(languages):
        raise ValueError(f"{len(labels)} labels but {len(languages)} languages")
    if not labels:
        return np.zeros(0)
    if language_power < 0:
        raise ValueError("language_power must be 0 or more")
    weights = np.ones(len(labels))
    if class_balance:
        counts = Counter(labels)
        weights *= np.array([len(labels) / (len(counts) * counts[label]) for label in labels])
    if language_power:
        shares = Counter(languages)
        weights *= np.array(
            [(shares[language] / len(languages)) ** -language_power for language in languages]
        )
    normalised: NDArray[np.float64] = weights / weights.mean()
    return normalised
