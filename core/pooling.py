"""Pooling several models' probabilities into one row per post: the ensemble version's rule (db/ensemble.py),
the protocol's averaged runs (core/crossval.py) and the archive scorer's (trainer/version_scorers.py)."""

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

POOLING = "arithmetic"
"""How a new ensemble version pools its members (pool); the geometric mean tied with it on posts that did not
choose it (docs/experiment.md, bench/pooling.py)."""
RULES = ("arithmetic", "geometric")
FLOOR = 1e-6
"""Probabilities are clipped to this before logarithmic pooling (a member's 0 would veto a label)."""


def pool(members: Sequence[NDArray[np.floating]], rule: str = POOLING) -> NDArray[np.float64]:
    """One row of probabilities per post from the members' rows: their mean (arithmetic), or their normalised
    geometric mean (logarithmic pooling: a label two members both find likely beats one that only one member is
    sure of)."""
    stacked = np.stack([np.asarray(m, dtype=np.float64) for m in members])
    if rule == "arithmetic":
        mean: NDArray[np.float64] = stacked.mean(axis=0)
        return mean
    if rule not in RULES:
        raise ValueError(f"unknown pooling rule '{rule}': use {' or '.join(RULES)}")
    logs = np.log(np.clip(stacked, FLOOR, 1.0)).mean(axis=0)
    unnormalised = np.exp(logs - logs.max(axis=-1, keepdims=True))
    geometric: NDArray[np.float64] = unnormalised / unnormalised.sum(axis=-1, keepdims=True)
    return geometric
