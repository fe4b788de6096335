"""The annotator-reliability model: Dawid-Skene per language, anchored on control posts, and the flag a researcher
sees when an annotator is far below the others (docs/annotators.md measures both)."""

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from core.labels import LABELS

H = TypeVar("H", bound=Hashable)
Item = TypeVar("Item", bound=Hashable)
Worker = TypeVar("Worker", bound=Hashable)
FloatArray = NDArray[np.float64]

DIAGONAL_PRIOR = 2.0
"""Pseudo-answers added on each confusion row's diagonal: a worker with few answers stays near "mostly right"
instead of a row of 0s and 1s made from two answers, and a class a worker never saw keeps a sensible row. 2.0
rather than 0.5: on the bench's 75-post languages it gives 90% right posteriors instead of 87% (docs/annotators.md),
and a hundred answers still outweigh it."""
OFF_DIAGONAL_PRIOR = 0.2
"""Pseudo-answers added on each off-diagonal cell, so that no mistake is ever impossible (log 0)."""
WORKER_PRIOR = 10.0
"""Pseudo-answers added to each confusion row spread by the worker's own overall accuracy (their share of answers
that agree with the current posteriors): a worker who is right on the labels that can be told apart is taken,
a priori, to be right on the others too. Where two workers disagree on two labels that few controls cover (one of
them swapping pro and neutral), this is what tips the posterior to the more careful one: +0.7 points on the
bench's three-annotator pool at overlap 3, and no pool worse (docs/annotators.md)."""
CLASS_PRIOR = 1.0
"""Pseudo-posts added to each class when the class shares are estimated (no class ends at share 0)."""
MAJORITY_SMOOTHING = 0.1
"""Added to each class's votes when the first posteriors are made from the majority vote."""

MODEL_VOTER = -1
"""The worker id under which the fast model's cross-fitted votes join the annotators' answers (user ids are
positive): a voter whose mistakes do not follow any annotator's, the third informative view that, with one
annotator answering at random, two annotators alone do not give (Dawid-Skene's confusions are then identified by
little more than the controls). It has a confusion matrix like any worker, so a weak model counts little; it is
never an annotator of the report, nor one of the peers a flag compares with. It votes only where at least two
annotators answered or on a control (`with_model_votes`)."""

MIN_CONTROL_ANSWERS = 5
"""Below this many control answers an annotator's accuracy on controls is "not measured yet": no number, no
interval, and no flag from the controls."""
CONTROL_FLAG_LEVEL = 0.7
"""The controls flag an annotator when even the top of their accuracy's 95% interval is below this share: a
careful annotator (90% right) essentially never gets there, a random one (25%) does within a few controls."""
MIN_MODEL_ANSWERS = 20
"""The reliability model flags an annotator only once they have given this many answers (overlap and controls)."""
MODEL_FLAG_MARGIN = 0.25
"""The reliability model flags an annotator whose estimated accuracy is this far below the others' (25 points):
a spammer (about 25% against 90%) is far below, a somewhat confused annotator (about 80%) is not."""


@dataclass(frozen=True)
class ReliabilityFit(Generic[Item, Worker]):
    """A fitted Dawid-Skene model. Class indices follow core.labels.LABELS (or 0..n_classes-1)."""

    posteriors: dict[Item, tuple[float, ...]] = field(default_factory=dict)
    """Per answered item, the probability of each true class (a control's is its gold label, one-hot)."""
    confusion: dict[Worker, FloatArray] = field(default_factory=dict)
    """Per worker, an (n_classes, n_classes) array [true class, given label]; each row sums to 1."""
    priors: FloatArray = field(default_factory=lambda: np.full(len(LABELS), 1.0 / len(LABELS)))
    """(n_classes,) share of each true class among the items."""
    iterations: int = 0

    def label_of(self, item: Item) -> tuple[int, float]:
        """The most probable class of `item` and its probability."""
        row = self.posteriors[item]
        best = int(np.argmax(row))
        return best, row[best]

    def accuracy_of(self, worker: Worker) -> float:
        """The worker's estimated share of right answers (estimated_accuracy of their confusion)."""
        return estimated_accuracy(self.confusion[worker], self.priors)


def dawid_skene(
    answers: Sequence[tuple[Item, Worker, int]],
    gold: Mapping[Item, int] | None = None,
    *,
    n_classes: int = len(LABELS),
    max_iter: int = 100,
    tol: float = 1e-6,
) -> ReliabilityFit[Item, Worker]:
    """Fit Dawid-Skene by EM on `answers`, (item, worker, label index) triples; a worker's repeated answers on one
    item all count. Items in `gold` (the controls) keep their gold label as a one-hot posterior in every step, which
    is what tells a careful worker from a confused one where two disagree. Starts from the majority vote (gold
    clamped), stops when no posterior moves by more than `tol`, or after `max_iter` rounds. Gold items nobody
    answered add nothing and get no posterior."""
    if not answers:
        return ReliabilityFit(priors=np.full(n_classes, 1.0 / n_classes))
    items = list(dict.fromkeys(item for item, _, _ in answers))
    workers = list(dict.fromkeys(worker for _, worker, _ in answers))
    item_index = {item: i for i, item in enumerate(items)}
    worker_index = {worker: w for w, worker in enumerate(workers)}
    rows = np.array([item_index[item] for item, _, _ in answers], dtype=np.int64)
    cols = np.array([worker_index[worker] for _, worker, _ in answers], dtype=np.int64)
    given = np.array([label for _, _, label in answers], dtype=np.int64)
    if given.min() < 0 or given.max() >= n_classes:
        raise ValueError(f"Labels must be class indices from 0 to {n_classes - 1}.")
    clamped = _gold_rows(gold or {}, item_index, n_classes)

    votes = np.zeros((len(items), n_classes))
    np.add.at(votes, (rows, given), 1.0)
    posteriors = _clamp(_normalised(votes + MAJORITY_SMOOTHING), clamped)
    row_prior = np.full((n_classes, n_classes), OFF_DIAGONAL_PRIOR) + np.eye(n_classes) * (
        DIAGONAL_PRIOR - OFF_DIAGONAL_PRIOR
    )
    iterations = 0
    confusion, priors = _m_step(posteriors, rows, cols, given, len(workers), row_prior)
    while iterations < max_iter:
        iterations += 1
        updated = _clamp(_e_step(confusion, priors, rows, cols, given, len(items)), clamped)
        moved = float(np.max(np.abs(updated - posteriors)))
        posteriors = updated
        confusion, priors = _m_step(posteriors, rows, cols, given, len(workers), row_prior)
        if moved < tol:
            break
    return ReliabilityFit(
        posteriors={item: tuple(float(p) for p in posteriors[i]) for i, item in enumerate(items)},
        confusion={worker: confusion[w] for w, worker in enumerate(workers)},
        priors=priors,
        iterations=iterations,
    )


def with_model_votes(
    answers: Sequence[tuple[Item, int, int]], votes: Mapping[Item, int], gold: Mapping[Item, int]
) -> list[tuple[Item, int, int]]:
    """`answers` (item, worker id, label index) plus the model's votes as worker MODEL_VOTER on the items that at
    least two workers answered and on the answered gold items (controls, where the votes teach the model's confusion
    and change nothing). An item one annotator alone labelled gets no vote: nothing there would tell whether the
    annotator or the model is right, and the model must not overturn a lone annotator's label."""
    workers: dict[Item, set[int]] = {}
    for item, worker, _ in answers:
        workers.setdefault(item, set()).add(worker)
    voted = [
        (item, MODEL_VOTER, votes[item])
        for item, who in workers.items()
        if item in votes and (len(who) >= 2 or item in gold)
    ]
    return [*answers, *voted]


def _gold_rows(gold: Mapping[Item, int], item_index: Mapping[Item, int], n_classes: int) -> dict[int, int]:
    for label in gold.values():
        if not 0 <= label < n_classes:
            raise ValueError(f"Gold labels must be class indices from 0 to {n_classes - 1}, not {label}.")
    return {item_index[item]: label for item, label in gold.items() if item in item_index}


def _normalised(matrix: FloatArray) -> FloatArray:
    out: FloatArray = matrix / matrix.sum(axis=-1, keepdims=True)
    return out


def _clamp(posteriors: FloatArray, clamped: Mapping[int, int]) -> FloatArray:
    if clamped:
        index = np.fromiter(clamped.keys(), dtype=np.int64)
        posteriors[index] = 0.0
        posteriors[index, np.fromiter(clamped.values(), dtype=np.int64)] = 1.0
    return posteriors


def _m_step(
    posteriors: FloatArray,
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
    given: NDArray[np.int64],
    n_workers: int,
    row_prior: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Confusion (n_workers, true, given) and class shares from the posteriors, each with its Dirichlet prior."""
    n_classes = posteriors.shape[1]
    # counts[w, :, l] sums the posteriors of the items worker w labelled l (bincount: far faster than add.at)
    cell = cols * n_classes + given
    answered = posteriors[rows]
    counts = np.stack(
        [
            np.bincount(cell, weights=answered[:, k], minlength=n_workers * n_classes)
            for k in range(n_classes)
        ],
        axis=1,
    ).reshape(n_workers, n_classes, n_classes)  # [worker, given, true]
    per_row: FloatArray = counts.transpose(0, 2, 1).astype(np.float64)
    confusion = _normalised(per_row + row_prior + _worker_prior(per_row))
    priors = _normalised(posteriors.sum(axis=0) + CLASS_PRIOR)
    return confusion, priors


def _worker_prior(counts: FloatArray) -> FloatArray:
    """(n_workers, true, given) pseudo-answers: WORKER_PRIOR per row, on the diagonal by the worker's overall
    accuracy in `counts` (smoothed like a row), the rest spread evenly."""
    n_classes = counts.shape[1]
    right = np.trace(counts, axis1=1, axis2=2) + DIAGONAL_PRIOR
    total = counts.sum(axis=(1, 2)) + DIAGONAL_PRIOR + (n_classes - 1) * OFF_DIAGONAL_PRIOR
    accuracy = right / total
    wrong = (1.0 - accuracy) / (n_classes - 1)
    prior: FloatArray = WORKER_PRIOR * (
        wrong[:, None, None] + (accuracy - wrong)[:, None, None] * np.eye(n_classes)[None, :, :]
    )
    return prior


def _e_step(
    confusion: FloatArray,
    priors: FloatArray,
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
    given: NDArray[np.int64],
    n_items: int,
) -> FloatArray:
    """Posteriors (n_items, n_classes) given the confusion matrices and class shares, computed in logs."""
    per_answer = np.log(confusion[cols, :, given])  # (n_answers, true class)
    log_likelihood = np.log(priors) + np.stack(
        [np.bincount(rows, weights=per_answer[:, k], minlength=n_items) for k in range(len(priors))], axis=1
    )
    log_likelihood -= log_likelihood.max(axis=1, keepdims=True)
    return _normalised(np.exp(log_likelihood))


def estimated_accuracy(confusion: FloatArray, priors: FloatArray) -> float:
    """The share of a worker's answers expected to be right: the diagonal of their confusion weighted by the
    class shares."""
    return float(np.dot(np.diag(confusion), priors / priors.sum()))


def wilson_interval(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a share (95% by default): sensible at 0 of n and n of n, unlike the normal
    approximation. No answers give (0, 1): nothing is known."""
    if total <= 0:
        return (0.0, 1.0)
    if not 0 <= correct <= total:
        raise ValueError(f"{correct} right out of {total} is not a share.")
    share = correct / total
    denominator = 1 + z * z / total
    centre = (share + z * z / (2 * total)) / denominator
    half = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def peer_accuracy(accuracies: Mapping[H, float], worker: H) -> float | None:
    """The median estimated accuracy of the other workers of a language (None when there are none): the
    "others" a worker is compared with in reliability_flag."""
    others = [accuracy for other, accuracy in accuracies.items() if other != worker]
    return float(np.median(others)) if others else None


def reliability_flag(
    correct: int,
    total: int,
    estimated: float | None,
    others: float | None,
    *,
    answers: int | None = None,
) -> str | None:
    """Why an annotator is far below the others, in a researcher's words, or None.

    `correct` of `total` control answers right; `estimated` the reliability model's accuracy for them and
    `others` the other annotators' (peer_accuracy); `answers` all their answers in the language (None: not
    checked). Flags when the controls say so (from MIN_CONTROL_ANSWERS on, the top of the 95% interval below
    CONTROL_FLAG_LEVEL), or when the model does (from MIN_MODEL_ANSWERS answers, MODEL_FLAG_MARGIN below the
    others)."""
    if total >= MIN_CONTROL_ANSWERS:
        low, high = wilson_interval(correct, total)
        if high < CONTROL_FLAG_LEVEL:
            return (
                f"Right on {correct} of {total} control posts ({correct / total:.0%}); even the top of the 95% "
                f"interval ({low:.0%} to {high:.0%}) is below the {CONTROL_FLAG_LEVEL:.0%} a careful annotator "
                f"reaches."
            )
    enough = answers is None or answers >= MIN_MODEL_ANSWERS
    if enough and estimated is not None and others is not None and estimated < others - MODEL_FLAG_MARGIN:
        return (
            f"The reliability model estimates {estimated:.0%} of their labels right, against {others:.0%} for "
            f"the other annotators of the language ({(others - estimated) * 100:.0f} points below; the flag is "
            f"raised at {MODEL_FLAG_MARGIN * 100:.0f})."
        )
    return None
