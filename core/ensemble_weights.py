"""Per-language weights for an ensemble's members, fitted on the eval posts.

One set of weights for every language let the fast model's collapse on an unseen language drag the ensemble
down with it (Korean, with no labels at all: the fast model's stance F1 was 0.00, the encoder's 0.30, their
average 0.00). So an ensemble version weighs its members language by language:
- by default, the members other than the fast model, averaged (the fast model's linear head on frozen embeddings
  transfers worst to a language nobody labelled: with four languages left out in turn, the encoder alone beat the
  plain average by +0.032 4-class and +0.060 [+0.01, +0.11] stance, docs/experiment.md); only the fast model when
  it is the only member. A language without eval labels gets these weights;
- over all eval labels, the weights that give them the highest likelihood (a grid over the simplex), shrunk
  toward that default by their number (`SHRINKAGE` pseudo-posts of the default): the overall weights, so that the
  fast model earns weight only where enough eval posts say it helps (and a member that has learnt little, a
  tiny model say, loses it);
- in a language with eval labels, its own best weights shrunk the same way toward the overall weights.

Fitting and scoring the same eval posts would flatter the ensemble, so its own eval probabilities are cross-fitted
(`cross_fitted`): each post is pooled with weights fitted on the other folds of its language. Pure numpy."""

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

SHRINKAGE = 30.0
"""Eval posts' worth of the default weights that every language's fitted weights are averaged with."""
GRID_STEP = 0.1
"""The weights tried: every point of the simplex on this grid."""
FLOOR = 1e-6
CROSS_FOLDS = 5
BY_LANGUAGE = "by language"
"""The pooling rule of an ensemble version with LanguageWeights (db/ensemble.py); older versions recorded a rule of
core.pooling."""
FAST = "fast"
"""The backend left out of the weights of a language without eval labels."""


@dataclass(frozen=True)
class LanguageWeights:
    """The weight of each member (in the ensemble's member order), by language."""

    by_language: Mapping[str, tuple[float, ...]]
    """Languages with eval labels."""
    unlabelled: tuple[float, ...]
    """Every other language."""

    def of(self, language: str | None) -> tuple[float, ...]:
        return self.by_language.get(language or "", self.unlabelled)

    def pool(
        self, members: Sequence[NDArray[np.floating]], languages: Sequence[str | None]
    ) -> NDArray[np.float64]:
        """Each post's members' rows averaged with its language's weights."""
        stacked = np.stack([np.asarray(m, dtype=np.float64) for m in members])  # (members, posts, labels)
        weights = np.array([self.of(language) for language in languages], dtype=np.float64).reshape(
            len(languages), len(members)
        )
        pooled: NDArray[np.float64] = np.einsum("mpl,pm->pl", stacked, weights)
        return pooled

    def pool_present(
        self, rows: Sequence[NDArray[np.floating] | None], language: str | None
    ) -> NDArray[np.float64]:
        """One post's pooled row from the members that scored it (None: a member that did not, e.g. a post
        imported after it was trained): its language's weights renormalised over those members, equal among
        them where those weights are all 0."""
        present = [i for i, row in enumerate(rows) if row is not None]
        if not present:
            raise ValueError("no member scored this post")
        weights = np.array([self.of(language)[i] for i in present], dtype=np.float64)
        if weights.sum() <= 0:
            weights = np.ones(len(present))
        weights /= weights.sum()
        stacked = np.stack([np.asarray(rows[i], dtype=np.float64) for i in present])
        pooled: NDArray[np.float64] = weights @ stacked
        return pooled

    def to_json(self) -> dict[str, Any]:
        return {
            "by_language": {k: list(v) for k, v in sorted(self.by_language.items())},
            "unlabelled": list(self.unlabelled),
        }

    @staticmethod
    def from_json(raw: Mapping[str, Any]) -> "LanguageWeights":
        return LanguageWeights(
            {str(k): tuple(float(w) for w in v) for k, v in raw["by_language"].items()},
            tuple(float(w) for w in raw["unlabelled"]),
        )


def grid(members: int, step: float = GRID_STEP) -> NDArray[np.float64]:
    """Every weight vector on the simplex whose entries are multiples of `step`."""
    parts = round(1 / step)
    points = [c for c in itertools.product(range(parts + 1), repeat=members - 1) if sum(c) <= parts]
    return np.array([[*c, parts - sum(c)] for c in points], dtype=np.float64) / parts


def best_weights(
    members: Sequence[NDArray[np.floating]],
    gold: NDArray[np.int64],
    near: Sequence[float] | NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """The grid's weights under which the pooled probabilities give `gold` the highest mean log-likelihood (ties:
    the point nearest `near`, equal weights by default)."""
    stacked = np.stack([np.asarray(m, dtype=np.float64) for m in members])  # (members, posts, labels)
    of_gold = stacked[:, np.arange(len(gold)), gold]  # (members, posts)
    candidates = grid(len(members))
    likelihood = np.log(np.clip(candidates @ of_gold, FLOOR, None)).mean(axis=1)
    target = np.full(len(members), 1 / len(members)) if near is None else np.asarray(near, dtype=np.float64)
    distance = np.abs(candidates - target).sum(axis=1)
    best = np.lexsort((distance, -np.round(likelihood, 9)))[0]
    chosen: NDArray[np.float64] = candidates[best]
    return chosen


def default_weights(backends: Sequence[str]) -> tuple[float, ...]:
    """Equal weights over the members that are not the fast model (all members if none is)."""
    kept = [b != FAST for b in backends]
    if not any(kept):
        kept = [True] * len(backends)
    return tuple(round(k / sum(kept), 6) for k in kept)


def fit_language_weights(
    members: Sequence[NDArray[np.floating]],
    gold: Sequence[int],
    languages: Sequence[str],
    backends: Sequence[str],
    shrinkage: float = SHRINKAGE,
) -> LanguageWeights:
    """LanguageWeights from the members' probabilities of labelled eval posts (rows in the same post order)."""
    if len(members) != len(backends) or not members:
        raise ValueError("one backend per member, and at least one member")
    g = np.asarray(gold, dtype=np.int64)
    langs = np.asarray(languages, dtype=np.str_)
    arrays = [np.asarray(m, dtype=np.float64) for m in members]
    default = default_weights(backends)
    overall = np.asarray(default, dtype=np.float64)
    if len(g):
        overall = _shrunk(best_weights(arrays, g, default), len(g), overall, shrinkage)
    by_language: dict[str, tuple[float, ...]] = {}
    for language in sorted(set(languages)):
        mask = langs == language
        fitted = best_weights([a[mask] for a in arrays], g[mask], overall)
        by_language[language] = tuple(
            round(float(w), 6) for w in _shrunk(fitted, int(mask.sum()), overall, shrinkage)
        )
    return LanguageWeights(by_language, default)


def _shrunk(
    fitted: NDArray[np.float64], posts: int, toward: NDArray[np.float64], shrinkage: float
) -> NDArray[np.float64]:
    mixed: NDArray[np.float64] = (posts * fitted + shrinkage * toward) / (posts + shrinkage)
    return mixed


def cross_fitted(
    members: Sequence[NDArray[np.floating]],
    gold: Sequence[int],
    languages: Sequence[str],
    backends: Sequence[str],
    folds: int = CROSS_FOLDS,
    shrinkage: float = SHRINKAGE,
    fold_of: Sequence[int] | None = None,
) -> NDArray[np.float64]:
    """The pooled probabilities of the labelled eval posts, each with weights fitted without its fold (posts
    dealt to `folds` folds in turn, language by language, unless `fold_of` gives each post's fold): an honest
    eval score for the weighted ensemble."""
    if fold_of is None:
        seen: dict[str, int] = {}
        dealt = []
        for language in languages:
            dealt.append(seen.get(language, 0) % folds)
            seen[language] = seen.get(language, 0) + 1
        fold_of = dealt
    assigned = np.asarray(fold_of, dtype=np.int64)
    arrays = [np.asarray(m, dtype=np.float64) for m in members]
    out = np.zeros_like(arrays[0])
    g, langs = np.asarray(gold, dtype=np.int64), list(languages)
    for fold in sorted(set(assigned.tolist())):
        held = assigned == fold
        rest = ~held
        weights = fit_language_weights(
            [a[rest] for a in arrays],
            g[rest].tolist(),
            [lang for lang, r in zip(langs, rest, strict=True) if r],
            backends,
            shrinkage,
        )
        out[held] = weights.pool(
            [a[held] for a in arrays], [lang for lang, h in zip(langs, held, strict=True) if h]
        )
    return out
