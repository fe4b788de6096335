"""Label shares from a classifier's probabilities, corrected for the classifier's own errors (quantification).

Counting the labels a model predicts (classify and count) inherits its errors: a model that misses stance in
Arabic undercounts Arabic pro and anti posts. The corrections below use what the eval split says about the
model's errors, per language where the language has enough eval posts (pooled over all languages where not):

- ``cc``   classify and count: the share of posts whose most probable label is each label (no correction).
- ``acc``  adjusted classify and count (Forman 2008): solve ``q = M p`` for the true shares ``p`` on the simplex,
           where ``q`` are the counted shares and ``M[i, j] = P(predicted i | true j)`` on the eval posts.
- ``pacc`` probabilistic ACC (Bella et al. 2010): the same with mean probabilities in place of counts.
- ``emq``  the EM method of Saerens, Latinne and Decaestecker (2002), after bias-corrected temperature scaling
           (Alexandari et al. 2020) fitted on the eval posts, whose label shares are then the prior EM starts from.

Everything here works on arrays (no database); annotator.reports.findings reads a project into them. The estimators are
checked against QuaPy's in tests/unit/annotator/reports/test_quantify.py.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Final

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize

from core.labels import LABELS

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
K: Final[int] = len(LABELS)
METHODS: Final[tuple[str, ...]] = ("cc", "acc", "pacc", "emq")
METHOD_NAMES: Final[dict[str, str]] = {
    "cc": "classify and count (raw)",
    "acc": "adjusted classify and count",
    "pacc": "probabilistic ACC",
    "emq": "EM (Saerens et al.) after calibration",
}
DEFAULT_METHOD: Final[str] = "emq"
"""The correction shown first: see docs/prevalence.md for the benchmark that chose it."""
MIN_EVAL_POSTS: Final[int] = 100
"""Eval posts a language needs before its count is corrected with its own errors. bench/prevalence.py (docs/
prevalence.md): with 50 eval posts every correction lost to the raw count on average (English, Spanish and the
ten others, the fast model and the encoder); with 100 EM beat it in English and Spanish."""
FALLBACKS: Final[tuple[str, ...]] = ("raw", "pooled")
"""For a language with too few eval posts: leave its count uncorrected ("raw", the default: bench/prevalence.py
measured pooled errors to be worse than no correction for such languages), or correct it with the errors pooled
over all languages ("pooled")."""
_EPS: Final[float] = 1e-9


@dataclass(frozen=True)
class Errors:
    """What labelled eval posts say about a model's errors (one language's, or all languages' pooled)."""

    hard: FloatArray
    """(K, K): ``hard[i, j]`` = P(predicted label i | true label j)."""
    soft: FloatArray
    """(K, K): ``soft[i, j]`` = mean probability of label i over the eval posts whose true label is j."""
    prior: FloatArray
    """(K,): label shares of the eval posts."""
    calibration: FloatArray
    """(K + 1,): log temperature, then one bias per label (bias-corrected temperature scaling)."""
    n: int


def _smoothed_columns(
    empirical: FloatArray, counts: FloatArray, fallback: FloatArray, strength: float
) -> FloatArray:
    """Each true label's column moved toward the fallback's by `strength` pseudo-posts (all of the way for a
    label with no eval post)."""
    weight = counts / (counts + strength)
    return empirical * weight + fallback * (1 - weight)


def calibrate(probabilities: FloatArray, calibration: FloatArray) -> FloatArray:
    """softmax(log p / T + b): bias-corrected temperature scaling."""
    logits = np.log(np.clip(probabilities, _EPS, None)) / np.exp(calibration[0]) + calibration[1:]
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    result: FloatArray = scaled / scaled.sum(axis=1, keepdims=True)
    return result


def fit_calibration(
    probabilities: FloatArray,
    gold: IntArray,
    toward: FloatArray | None = None,
    strength: float = 1.0,
    weights: FloatArray | None = None,
) -> FloatArray:
    """Bias-corrected temperature scaling by maximum likelihood on labelled posts (each weighted by `weights`);
    with `toward`, an L2 pull of `strength` toward those parameters (a language's fit pulled toward the pooled
    one)."""
    log_p = np.log(np.clip(probabilities, _EPS, None))
    onehot = np.eye(K)[gold] * (np.ones(len(gold)) if weights is None else weights)[:, None]
    centre = np.zeros(K + 1) if toward is None else toward
    pull = 1e-3 if toward is None else strength  # a tiny pull keeps the biases identifiable

    def loss(theta: FloatArray) -> tuple[float, FloatArray]:
        temperature = np.exp(theta[0])
        logits = log_p / temperature + theta[1:]
        logits -= logits.max(axis=1, keepdims=True)
        log_q = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        residual = np.exp(log_q) * onehot.sum(axis=1, keepdims=True) - onehot
        grad = np.empty(K + 1)
        grad[0] = float(np.sum(residual * (-log_p / temperature)))
        grad[1:] = residual.sum(axis=0)
        diff = theta - centre
        return float(-np.sum(log_q * onehot) + pull * diff @ diff), grad + 2 * pull * diff

    result = minimize(
        loss, centre.copy(), jac=True, method="L-BFGS-B", bounds=[(-3.0, 3.0)] + [(-20, 20)] * K
    )
    fitted: FloatArray = result.x
    return fitted


def fit_errors(
    probabilities: FloatArray,
    gold: IntArray,
    fallback: Errors | None = None,
    strength: float = 5.0,
    weights: FloatArray | None = None,
) -> Errors:
    """A model's errors on labelled posts (each weighted by `weights`, 1 by default). With a fallback (the
    pooled errors), each true label's rates are moved toward the fallback's by `strength` pseudo-posts, so that a
    label with two eval posts in a language does not decide that language's correction alone."""
    w = np.ones(len(gold)) if weights is None else weights
    counts = np.bincount(gold, weights=w, minlength=K).astype(np.float64)
    predicted = probabilities.argmax(axis=1)
    hard: FloatArray = np.zeros((K, K))
    np.add.at(hard, (predicted, gold), w)
    soft: FloatArray = np.zeros((K, K))
    np.add.at(soft.T, gold, probabilities * w[:, None])
    seen = counts > 0
    hard[:, seen] /= counts[seen]
    soft[:, seen] /= counts[seen]
    if fallback is None:
        # QuaPy's convention for a label with no eval post: assume it is always recognised.
        hard[:, ~seen] = np.eye(K)[:, ~seen]
        soft[:, ~seen] = np.eye(K)[:, ~seen]
        prior = counts / max(1e-12, counts.sum())
        calibration = fit_calibration(probabilities, gold, weights=w)
    else:
        hard = _smoothed_columns(hard, counts, fallback.hard, strength)
        soft = _smoothed_columns(soft, counts, fallback.soft, strength)
        prior = (counts + strength * fallback.prior) / (counts.sum() + strength)
        calibration = fit_calibration(probabilities, gold, fallback.calibration)
    return Errors(hard, soft, prior, calibration, len(gold))


def simplex_least_squares(matrix: FloatArray, target: FloatArray) -> FloatArray:
    """argmin ||matrix @ p - target|| over label shares p (p >= 0, sum p = 1), exactly: the best solution of
    the equality-constrained problem on every support (2^K - 1 of them, 15 for four labels)."""
    best: FloatArray | None = None
    best_residual = np.inf
    for size in range(1, K + 1):
        for support in combinations(range(K), size):
            columns = matrix[:, support]
            system = np.zeros((size + 1, size + 1))
            system[:size, :size] = 2 * columns.T @ columns
            system[:size, size] = 1.0
            system[size, :size] = 1.0
            rhs = np.concatenate([2 * columns.T @ target, [1.0]])
            solution = np.linalg.lstsq(system, rhs, rcond=None)[0][:size]
            if solution.min() < -1e-10:
                continue
            p = np.zeros(K)
            p[list(support)] = np.clip(solution, 0.0, None)
            p /= p.sum()
            residual = float(np.linalg.norm(matrix @ p - target))
            if residual < best_residual - 1e-12:
                best, best_residual = p, residual
    assert best is not None  # a single label is always feasible
    return best


def expectation_maximisation(
    probabilities: FloatArray, source_prior: FloatArray, tolerance: float = 1e-6, max_iterations: int = 1000
) -> FloatArray:
    """Saerens, Latinne and Decaestecker (2002): reweight the posteriors by the ratio of the new prior to the
    source prior until the prior stops moving."""
    source = np.clip(source_prior, _EPS, None)
    prior = source.copy()
    for _ in range(max_iterations):
        weighted = probabilities * (prior / source)
        weighted /= weighted.sum(axis=1, keepdims=True)
        updated: FloatArray = weighted.mean(axis=0)
        if np.abs(updated - prior).max() < tolerance:
            return updated
        prior = updated
    return prior


def counted_shares(probabilities: FloatArray) -> FloatArray:
    shares: FloatArray = np.bincount(probabilities.argmax(axis=1), minlength=K) / max(1, len(probabilities))
    return shares


def estimate(method: str, probabilities: FloatArray, errors: Errors) -> FloatArray:
    """The label shares (LABELS order) of a set of posts by one method."""
    if method == "cc":
        return counted_shares(probabilities)
    if method == "acc":
        return simplex_least_squares(errors.hard, counted_shares(probabilities))
    if method == "pacc":
        return simplex_least_squares(errors.soft, probabilities.mean(axis=0))
    if method == "emq":
        return expectation_maximisation(calibrate(probabilities, errors.calibration), errors.prior)
    raise ValueError(f"unknown method {method!r}: choose from {', '.join(METHODS)}")


@dataclass(frozen=True)
class EvalPosts:
    """Labelled eval posts with the model's probabilities for them."""

    probabilities: FloatArray
    gold: IntArray
    languages: NDArray[np.str_]


@dataclass(frozen=True)
class ErrorModel:
    """The pooled errors and, for languages with at least `min_eval` eval posts, their own."""

    pooled: Errors
    by_language: dict[str, Errors]
    eval_posts: dict[str, int]

    def errors_for(self, language: str) -> Errors:
        return self.by_language.get(language, self.pooled)


def language_weights(languages: NDArray[np.str_]) -> FloatArray:
    """A weight per post that gives every language the same total (and the posts their number in all)."""
    names, inverse, counts = np.unique(languages, return_inverse=True, return_counts=True)
    weights: FloatArray = (len(languages) / len(names)) / counts[inverse]
    return weights


def fit_error_model(
    evals: EvalPosts, min_eval: int, strength: float = 5.0, balanced: bool = False
) -> ErrorModel:
    """Per-language errors for languages with `min_eval` eval posts, and pooled errors for the rest (and to pull
    the per-language ones toward). `balanced` pools with every language weighing the same instead of every post
    (tried so that the pooled errors are not English's and Spanish's alone: it did not help the small languages
    in bench/prevalence.py and made English and Spanish slightly worse, so it is off)."""
    weights = language_weights(evals.languages) if balanced and len(evals.gold) else None
    pooled = fit_errors(evals.probabilities, evals.gold, weights=weights)
    by_language: dict[str, Errors] = {}
    eval_posts: dict[str, int] = {}
    for language in np.unique(evals.languages):
        mask = evals.languages == language
        eval_posts[str(language)] = int(mask.sum())
        if mask.sum() >= min_eval:
            by_language[str(language)] = fit_errors(
                evals.probabilities[mask], evals.gold[mask], pooled, strength
            )
    return ErrorModel(pooled, by_language, eval_posts)


@dataclass(frozen=True)
class Counted:
    """Posts to count: probabilities, language, and the group each belongs to (groups[i] indexes group_keys)."""

    probabilities: FloatArray
    languages: NDArray[np.str_]
    groups: IntArray
    group_keys: list[tuple[str, ...]]


@dataclass(frozen=True)
class GroupShares:
    """One group's shares by every method: point estimates and bootstrap replicates, (K,) and (B, K)."""

    key: tuple[str, ...]
    posts: int
    languages: dict[str, int]
    pooled_languages: list[str]
    """Languages of the group with too few eval posts of their own (left raw, or corrected with pooled errors)."""
    point: dict[str, FloatArray]
    replicates: dict[str, FloatArray] = field(repr=False)

    def interval(self, method: str, scope: str = "all") -> tuple[FloatArray, FloatArray]:
        """95% percentile intervals of every share of a scope."""
        values = scoped(self.replicates[method], scope)
        with np.errstate(invalid="ignore"):
            low, high = np.nanpercentile(values, [2.5, 97.5], axis=0)
        return low, high


def scoped(shares: FloatArray, scope: str) -> FloatArray:
    """Shares among all posts ("all", four labels) or among the immigration-related ones ("related": pro,
    anti, neutral divided by one minus the unrelated share; NaN where nothing is related)."""
    if scope == "all":
        return shares
    if scope != "related":
        raise ValueError(f"unknown scope {scope!r}")
    related = shares[..., :3]
    total = related.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        result: FloatArray = np.where(total > 0, related / np.where(total > 0, total, 1.0), np.nan)
    return result


def _group_estimate(
    cells: Sequence[tuple[str, IntArray]],
    probabilities: FloatArray,
    model: ErrorModel,
    methods: Sequence[str],
    rng: np.random.Generator | None,
    fallback: str,
) -> dict[str, FloatArray]:
    """The group's shares: each language cell corrected with its language's errors (or, for a language with too
    few eval posts, by the fallback), weighted by its posts."""
    total = sum(len(index) for _, index in cells)
    result: dict[str, FloatArray] = {method: np.zeros(K) for method in methods}
    for language, index in cells:
        sample = index if rng is None else index[rng.integers(0, len(index), len(index))]
        cell = probabilities[sample]
        errors = model.errors_for(language)
        own = language in model.by_language
        for method in methods:
            used = method if own or fallback == "pooled" else "cc"
            result[method] += estimate(used, cell, errors) * (len(index) / total)
    return result


def _resample_evals(evals: EvalPosts, rng: np.random.Generator) -> EvalPosts:
    """The eval posts resampled with replacement within each language (each language keeps its size)."""
    picks = []
    for language in np.unique(evals.languages):
        index = np.flatnonzero(evals.languages == language)
        picks.append(index[rng.integers(0, len(index), len(index))])
    sample = np.concatenate(picks)
    return EvalPosts(evals.probabilities[sample], evals.gold[sample], evals.languages[sample])


def group_shares(
    counted: Counted,
    evals: EvalPosts,
    methods: Sequence[str] = METHODS,
    *,
    resamples: int = 200,
    min_eval: int = MIN_EVAL_POSTS,
    fallback: str = "raw",
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> list[GroupShares]:
    """Every group's shares by each method, with bootstrap replicates that resample the eval posts (within each
    language) as well as the counted posts (within each group and language), so intervals carry the uncertainty
    of the model's measured errors and not only of the counting."""
    for method in methods:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}: choose from {', '.join(METHODS)}")
    if fallback not in FALLBACKS:
        raise ValueError(f"unknown fallback {fallback!r}: choose from {', '.join(FALLBACKS)}")
    cells_of: list[list[tuple[str, IntArray]]] = []
    for g in range(len(counted.group_keys)):
        members = np.flatnonzero(counted.groups == g)
        languages = counted.languages[members]
        cells_of.append(
            [(str(language), members[languages == language]) for language in np.unique(languages)]
        )
    model = fit_error_model(evals, min_eval)
    points = [
        _group_estimate(cells, counted.probabilities, model, methods, None, fallback) for cells in cells_of
    ]
    replicates: list[dict[str, FloatArray]] = [
        {m: np.zeros((resamples, K)) for m in methods} for _ in cells_of
    ]
    rng = np.random.default_rng(seed)
    for b in range(resamples):
        replica = fit_error_model(_resample_evals(evals, rng), min_eval)
        for g, cells in enumerate(cells_of):
            estimates = _group_estimate(cells, counted.probabilities, replica, methods, rng, fallback)
            for method, shares in estimates.items():
                replicates[g][method][b] = shares
        if progress is not None:
            progress(b + 1, resamples)
    return [
        GroupShares(
            key=counted.group_keys[g],
            posts=sum(len(index) for _, index in cells),
            languages={language: len(index) for language, index in cells},
            pooled_languages=[language for language, _ in cells if language not in model.by_language],
            point=points[g],
            replicates=replicates[g],
        )
        for g, cells in enumerate(cells_of)
        if cells
    ]


def never_predicted(counted: Counted, evals: EvalPosts, min_posts: int = 20) -> dict[str, list[str]]:
    """Per language with at least `min_posts` posts to count, the labels the model gives none of them (the most
    probable label of no counted post and no eval post of that language) although the eval split has them: no
    correction can recover a label the model never gives, so its share there is not to be trusted."""
    found: dict[str, list[str]] = {}
    in_gold = set(np.unique(evals.gold).tolist())
    for language in np.unique(counted.languages):
        mine = counted.languages == language
        if int(mine.sum()) < min_posts:
            continue
        given = set(np.argmax(counted.probabilities[mine], axis=1).tolist())
        theirs = evals.languages == language
        if theirs.any():
            given |= set(np.argmax(evals.probabilities[theirs], axis=1).tolist())
        missing = [LABELS[k] for k in range(len(LABELS)) if k in in_gold and k not in given]
        if missing:
            found[str(language)] = missing
    return found
