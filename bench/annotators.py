"""Simulated annotator pools over the shared corpus's gold labels: majority vote against the reliability model
(core/reliability.py), how soon the flag catches a spammer, and what each set of labels does to the fast model.

Per language of train.csv, three simulated annotators label every post (overlap 3) or two of them at random each
post (overlap 2): careful (90% right, mistakes uniform), confused (swaps pro and neutral 40% of the time, else
right: the issue's simulation), spammer (uniform random). A harder mix replaces the confused annotator with a
careless-confused one (the same swaps, and 90% right otherwise, like the careful one). A share of the posts (5% by default, and 0%) are controls: every annotator
answers them, the model clamps them to their gold label, and they are left out of the accuracy.

    .venv/bin/python -m bench.annotators            # 20 seeds: 14 minutes on 2 busy cores, embeddings cached
    .venv/bin/python -m bench.annotators --quick    # 3 seeds

The flag is measured as the app would meet it: each annotator gets 20 control posts one at a time, four ordinary
posts before each (the start rate, 1 in 5, shared by the three; on the 75-post languages the ordinary posts run
out after the 13th control), and after every control answer the model is refitted on everything so far and
core.reliability.reliability_flag asked again.
"""

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from annotator.retraining.fastmodel import cross_fitted_labels, embed_texts
from bench.common import EMBEDDINGS_DIR, SHARED
from core.labels import LABELS
from core.metrics import macro_f1, stance_f1
from core.reliability import dawid_skene, peer_accuracy, reliability_flag, with_model_votes
from core.study import StudyPost, read_study_csv

PRO, NEUTRAL = LABELS.index("pro"), LABELS.index("neutral")
Annotator = Callable[[int, np.random.Generator], int]
IntArray = NDArray[np.int64]


def careful(true: int, rng: np.random.Generator) -> int:
    return true if rng.random() < 0.9 else int(rng.integers(len(LABELS)))


def _swapped(true: int, rng: np.random.Generator) -> int | None:
    """Pro given as neutral and neutral as pro, 40% of the time; None when not swapped."""
    if true in (PRO, NEUTRAL) and rng.random() < 0.4:
        return NEUTRAL if true == PRO else PRO
    return None


def confused(true: int, rng: np.random.Generator) -> int:
    swapped = _swapped(true, rng)
    return true if swapped is None else swapped


def careless_confused(true: int, rng: np.random.Generator) -> int:
    swapped = _swapped(true, rng)
    return careful(true, rng) if swapped is None else swapped


def spammer(true: int, rng: np.random.Generator) -> int:
    return int(rng.integers(len(LABELS)))


KINDS: dict[str, Annotator] = {
    "careful": careful,
    "confused": confused,
    "careless-confused": careless_confused,
    "spammer": spammer,
}
MIXES: dict[str, tuple[str, ...]] = {
    "careful, confused, spammer": ("careful", "confused", "spammer"),
    "careful, careless-confused, spammer": ("careful", "careless-confused", "spammer"),
    "careful x2 + confused": ("careful", "careful", "confused"),
    "careful x2 + spammer": ("careful", "careful", "spammer"),
    "careful x3": ("careful", "careful", "careful"),
}


def true_confusion(kind: str) -> NDArray[np.float64]:
    """[true, given] probabilities of each simulated kind, as the functions above draw them."""
    n = len(LABELS)
    if kind == "spammer":
        return np.full((n, n), 1.0 / n)
    matrix = np.eye(n) if kind == "confused" else np.full((n, n), 0.1 / n) + np.eye(n) * 0.9
    if kind in ("confused", "careless-confused"):
        for true, swapped in ((PRO, NEUTRAL), (NEUTRAL, PRO)):
            matrix[true] *= 0.6
            matrix[true, swapped] += 0.4
    return matrix


TRUE_CONFUSION = {kind: true_confusion(kind) for kind in KINDS}
HEADLINE = "careful, confused, spammer"
FLAG_CONTROLS = 20
ORDINARY_PER_CONTROL = 4


@dataclass(frozen=True)
class Labelled:
    """One simulated campaign over train.csv: per post the majority and posterior label (controls: gold)."""

    majority: IntArray
    posterior: IntArray
    ceiling: IntArray
    """The posterior label with the annotators' true confusions and the true class shares: what no model beats."""
    probability: NDArray[np.float64]
    control: NDArray[np.bool_]
    voted: IntArray | None = None
    """The posterior label with the fast model's cross-fitted votes as one more voter (with `features` only)."""
    voted_probability: NDArray[np.float64] | None = None


def by_language(posts: Sequence[StudyPost]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for index, post in enumerate(posts):
        groups.setdefault(post.language, []).append(index)
    return groups


def campaign(
    gold: IntArray,
    groups: dict[str, list[int]],
    mix: Sequence[str],
    overlap: int,
    controls: float,
    seed: int,
    aggregate: Callable[[list[tuple[int, int, int]], dict[int, int]], dict[int, int]] | None = None,
    features: NDArray[np.float32] | None = None,
    languages: Sequence[str] = (),
) -> Labelled:
    """One simulated campaign. With `features` (train.csv's embeddings) and `languages`, also the posterior with
    the fast model's votes, as the app makes them: a head cross-fitted on the posterior labels (weighted by their
    probability, controls at their gold label) votes on every post, and the model is refitted with that voter."""
    rng = np.random.default_rng(seed)
    majority, posterior, ceiling = gold.copy(), gold.copy(), gold.copy()
    log_shares = np.log(np.bincount(gold, minlength=len(LABELS)) / len(gold))
    # log 0 = -inf: the confused annotator never mistakes anti or unrelated
    with np.errstate(divide="ignore"):
        log_confusion = [np.log(TRUE_CONFUSION[kind]) for kind in mix]
    probability = np.ones(len(gold))
    control = np.zeros(len(gold), dtype=bool)
    log_posterior_of: dict[int, NDArray[np.float64]] = {}
    fitted: list[tuple[list[int], list[tuple[int, int, int]], dict[int, int]]] = []
    for indices in groups.values():
        chosen = rng.choice(indices, size=round(controls * len(indices)), replace=False).tolist()
        control[chosen] = True
        answers: list[tuple[int, int, int]] = []
        for post in indices:
            who = range(len(mix)) if control[post] else rng.choice(len(mix), size=overlap, replace=False)
            answers += [(post, w, KINDS[mix[w]](int(gold[post]), rng)) for w in who]
        fit = dawid_skene(answers, {post: int(gold[post]) for post in chosen})
        fitted.append((indices, answers, {post: int(gold[post]) for post in chosen}))
        other = aggregate(answers, {post: int(gold[post]) for post in chosen}) if aggregate else {}
        votes: dict[int, list[int]] = {}
        for post, _, label in answers:
            votes.setdefault(post, []).append(label)
        for post in indices:
            if control[post]:
                continue
            counts = np.bincount(votes[post], minlength=len(LABELS))
            majority[post] = rng.choice(np.flatnonzero(counts == counts.max()))  # ties at random
            posterior[post], probability[post] = fit.label_of(post)
            if aggregate:
                posterior[post] = other[post]
        for post, w, label in answers:
            log_posterior_of.setdefault(post, log_shares.copy())
            log_posterior_of[post] += log_confusion[w][:, label]
    for post, scores in log_posterior_of.items():
        if not control[post]:
            ceiling[post] = int(np.argmax(scores))
    if features is None:
        return Labelled(majority, posterior, ceiling, probability, control)
    voted, voted_probability = voted_labels(features, languages, posterior, probability, fitted)
    return Labelled(majority, posterior, ceiling, probability, control, voted, voted_probability)


def voted_labels(
    features: NDArray[np.float32],
    languages: Sequence[str],
    posterior: IntArray,
    probability: NDArray[np.float64],
    fitted: Sequence[tuple[list[int], list[tuple[int, int, int]], dict[int, int]]],
) -> tuple[IntArray, NDArray[np.float64]]:
    """The posterior labels and probabilities refitted per language with the fast model's cross-fitted votes
    (core.reliability.with_model_votes), as db.consensus fits them."""
    votes = cross_fitted_labels(features, posterior.tolist(), languages, probability.tolist())
    voted, voted_probability = posterior.copy(), probability.copy()
    for indices, answers, controls in fitted:
        cast = {post: int(votes[post]) for post in indices if votes[post] >= 0}
        fit = dawid_skene(with_model_votes(answers, cast, controls), controls)
        for post in indices:
            if post not in controls:
                voted[post], voted_probability[post] = fit.label_of(post)
    return voted, voted_probability


def first_flags(gold: IntArray, indices: list[int], mix: Sequence[str], seed: int) -> list[int | None]:
    """Per annotator, the number of control answers after which they were first flagged (None: not in 20)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(indices).tolist()
    controls, ordinary = order[:FLAG_CONTROLS], order[FLAG_CONTROLS:]
    answers: list[tuple[int, int, int]] = []
    correct = [0] * len(mix)
    flagged: list[int | None] = [None] * len(mix)
    served = [rng.permutation(controls).tolist() for _ in mix]
    for step in range(FLAG_CONTROLS):
        for post in ordinary[step * ORDINARY_PER_CONTROL : (step + 1) * ORDINARY_PER_CONTROL]:
            answers += [(post, w, KINDS[kind](int(gold[post]), rng)) for w, kind in enumerate(mix)]
        for w, kind in enumerate(mix):
            post = served[w][step]
            label = KINDS[kind](int(gold[post]), rng)
            answers.append((post, w, label))
            correct[w] += label == gold[post]
        seen = {post for w in range(len(mix)) for post in served[w][: step + 1]}
        fit = dawid_skene(answers, {post: int(gold[post]) for post in seen}, tol=1e-4)
        accuracy = {w: fit.accuracy_of(w) for w in range(len(mix))}
        for w in range(len(mix)):
            if flagged[w] is None:
                count = sum(1 for _, who, _ in answers if who == w)
                reason = reliability_flag(
                    correct[w], step + 1, accuracy[w], peer_accuracy(accuracy, w), answers=count
                )
                flagged[w] = step + 1 if reason else None
    return flagged


def spread(values: Sequence[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def accuracy_table(
    gold: IntArray,
    groups: dict[str, list[int]],
    seeds: int,
    controls: float,
    features: NDArray[np.float32] | None = None,
    languages: Sequence[str] = (),
) -> None:
    """Majority against the posterior per pool and overlap; with `features`, also the posterior with the fast
    model's cross-fitted votes and its gain over majority."""
    print(
        f"\nLabel accuracy against train.csv's gold labels, controls {controls:.0%} (left out), {seeds} seeds"
    )
    voted_header = "" if features is None else f" {'with model votes':>16} {'gain (points)':>16}"
    print(
        f"{'mix':<36} {'overlap':>7} {'majority':>15} {'posterior':>15} {'gain (points)':>16}{voted_header} "
        f"{'known confusions':>17}"
    )
    for name, mix in MIXES.items():
        for overlap in (3, 2):
            majority, posterior, gains, ceiling, voted, voted_gains = [], [], [], [], [], []
            for seed in range(seeds):
                run = campaign(
                    gold, groups, mix, overlap, controls, seed, features=features, languages=languages
                )
                scored = ~run.control
                majority.append(float(np.mean(run.majority[scored] == gold[scored])))
                posterior.append(float(np.mean(run.posterior[scored] == gold[scored])))
                gains.append(100 * (posterior[-1] - majority[-1]))
                ceiling.append(float(np.mean(run.ceiling[scored] == gold[scored])))
                if run.voted is not None:
                    voted.append(float(np.mean(run.voted[scored] == gold[scored])))
                    voted_gains.append(100 * (voted[-1] - majority[-1]))
            with_votes = (
                f" {spread(voted):>16} {np.mean(voted_gains):>5.1f} (min {min(voted_gains):>4.1f})"
                if voted
                else ""
            )
            print(
                f"{name:<36} {overlap:>7} {spread(majority):>15} {spread(posterior):>15} "
                f"{np.mean(gains):>5.1f} (min {min(gains):>4.1f}){with_votes} {spread(ceiling):>17}",
                flush=True,
            )


def crowdkit_labels(answers: list[tuple[int, int, int]], gold: dict[int, int]) -> dict[int, int]:
    """crowd-kit's DawidSkene on the same answers, the controls given as its `true_labels`."""
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    data = pd.DataFrame(answers, columns=["task", "worker", "label"])
    labels = DawidSkene(n_iter=100).fit(data, true_labels=pd.Series(gold, dtype="int64")).labels_
    assert labels is not None  # set by fit
    return {int(task): int(label) for task, label in labels.items()}


def crowdkit_table(gold: IntArray, groups: dict[str, list[int]], seeds: int, controls: float) -> None:
    print(f"\ncrowd-kit's DawidSkene against ours, controls {controls:.0%} as its true_labels, {seeds} seeds")
    print(f"{'mix':<36} {'overlap':>7} {'majority':>15} {'ours':>15} {'crowd-kit':>15}")
    for name in (HEADLINE, "careful, careless-confused, spammer"):
        for overlap in (3, 2):
            found: dict[str, list[float]] = {"majority": [], "ours": [], "crowd-kit": []}
            for seed in range(seeds):
                ours = campaign(gold, groups, MIXES[name], overlap, controls, seed)
                theirs = campaign(gold, groups, MIXES[name], overlap, controls, seed, crowdkit_labels)
                scored = ~ours.control
                found["majority"].append(float(np.mean(ours.majority[scored] == gold[scored])))
                found["ours"].append(float(np.mean(ours.posterior[scored] == gold[scored])))
                found["crowd-kit"].append(float(np.mean(theirs.posterior[scored] == gold[scored])))
            cells = " ".join(f"{spread(values):>15}" for values in found.values())
            print(f"{name:<36} {overlap:>7} {cells}", flush=True)


def flag_table(gold: IntArray, groups: dict[str, list[int]], seeds: int) -> None:
    print(
        f"\nThe flag: {FLAG_CONTROLS} control answers per annotator and language, {seeds} seeds x "
        f"{len(groups)} languages"
    )
    print(f"{'mix':<36} {'annotator':<10} {'flagged within 20':>18} {'median controls to flag':>24}")
    for name in (HEADLINE, "careful x2 + spammer", "careful x2 + confused", "careful x3"):
        mix = MIXES[name]
        firsts: list[list[int | None]] = [
            first_flags(gold, indices, mix, seed * 1000 + i)
            for seed in range(seeds)
            for i, indices in enumerate(groups.values())
        ]
        for kind in dict.fromkeys(mix):
            steps = [run[w] for run in firsts for w, k in enumerate(mix) if k == kind]
            hits = [s for s in steps if s is not None]
            median = f"{np.median(hits):.0f}" if hits else "-"
            print(f"{name:<36} {kind:<10} {len(hits) / len(steps):>18.1%} {median:>24}", flush=True)


def fit_head(
    x: NDArray[np.float32], y: IntArray, languages: Sequence[str], weight: NDArray[np.float64]
) -> object:
    """The fast model's head (annotator/retraining/fastmodel.train_head), each post weighted by its consensus's
    probability as the app's training does (core.weighting's confidences)."""
    from sklearn.linear_model import LogisticRegression

    from core.weighting import DEFAULT_LANGUAGE_POWER, example_weights

    weights = example_weights(
        y.tolist(), list(languages), language_power=DEFAULT_LANGUAGE_POWER, confidences=weight.tolist()
    )
    return LogisticRegression(max_iter=2000, C=4.0, random_state=0).fit(x, y, sample_weight=weights)


def downstream_table(
    controls: float,
    gold: IntArray,
    groups: dict[str, list[int]],
    train: Sequence[StudyPost],
    test: Sequence[StudyPost],
    seeds: int,
    vectors: NDArray[np.float32],
) -> None:
    from annotator.retraining.fastmodel import predict_proba

    x_train, x_test = vectors[: len(train)], vectors[len(train) :]
    y_test = np.array([LABELS.index(p.label) for p in test], dtype=np.int64)
    languages = [p.language for p in train]

    def scores(y: IntArray, weight: NDArray[np.float64]) -> tuple[float, float]:
        predicted = predict_proba(fit_head(x_train, y, languages, weight), x_test).argmax(axis=1)
        return macro_f1(y_test, predicted, range(len(LABELS))), stance_f1(y_test, predicted)

    reference = scores(gold, np.ones(len(gold)))
    print(
        f"The fast model on test.csv ({len(test)} posts); on train.csv's gold labels: "
        f"macro-F1 {reference[0]:.3f}, stance F1 {reference[1]:.3f}"
    )
    print(
        f"Trained on simulated labels ({controls:.0%} controls, trained on with their gold label), {seeds} seeds"
    )
    print(
        f"{'mix, overlap':<34} {'training labels':<22} {'4-class macro-F1':>17} {'stance F1':>15} "
        f"{'stance F1 - majority, same seed':>32}"
    )
    for overlap in (3, 2):
        results: dict[str, list[tuple[float, float]]] = {
            "majority": [],
            "posterior": [],
            "posterior, weighted": [],
            "with votes, weighted": [],
        }
        for seed in range(seeds):
            run = campaign(
                gold, groups, MIXES[HEADLINE], overlap, controls, seed, features=x_train, languages=languages
            )
            assert run.voted is not None and run.voted_probability is not None  # features were given
            results["majority"].append(scores(run.majority, np.ones(len(gold))))
            results["posterior"].append(scores(run.posterior, np.ones(len(gold))))
            results["posterior, weighted"].append(scores(run.posterior, run.probability))
            results["with votes, weighted"].append(scores(run.voted, run.voted_probability))
        for labels, found in results.items():
            # paired by seed: both label sets come from the same simulated answers
            gain = [s - m for (_, s), (_, m) in zip(found, results["majority"], strict=True)]
            paired = "" if labels == "majority" else f"{spread(gain)} (min {min(gain):+.3f})"
            print(
                f"{HEADLINE + f', {overlap}':<34} {labels:<22} {spread([f for f, _ in found]):>17} "
                f"{spread([s for _, s in found]):>15} {paired:>32}",
                flush=True,
            )


def embedded(train: Sequence[StudyPost], test: Sequence[StudyPost]) -> NDArray[np.float32]:
    """train.csv's then test.csv's e5 embeddings, as the fast model embeds them (cached in EMBEDDINGS_DIR)."""
    started = time.perf_counter()
    vectors = embed_texts([p.text for p in train] + [p.text for p in test], EMBEDDINGS_DIR)
    print(
        f"{len(vectors):,} posts embedded in {time.perf_counter() - started:.0f} s (cached after the first run)"
    )
    return vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="simulated campaigns per setting")
    parser.add_argument(
        "--controls", type=float, default=0.05, help="share of each language's posts as controls"
    )
    parser.add_argument("--quick", action="store_true", help="3 seeds")
    parser.add_argument(
        "--no-model", action="store_true", help="skip the fast model (its votes and its table; no embeddings)"
    )
    parser.add_argument("--model-only", action="store_true", help="only the fast model's table")
    parser.add_argument(
        "--no-flags", action="store_true", help="skip the flag table and the accuracy table without controls"
    )
    parser.add_argument(
        "--crowd-kit", action="store_true", help="only crowd-kit's DawidSkene against ours (test extras)"
    )
    args = parser.parse_args()
    seeds = 3 if args.quick else args.seeds
    started = time.perf_counter()
    train = read_study_csv(SHARED / "train.csv")
    test = read_study_csv(SHARED / "test.csv")
    gold = np.array([LABELS.index(p.label) for p in train], dtype=np.int64)
    groups = by_language(train)
    print(f"train.csv: {len(train):,} posts in {len(groups)} languages; {seeds} seeds")
    if args.crowd_kit:
        crowdkit_table(gold, groups, seeds, args.controls)
        return
    vectors = None if args.no_model else embedded(train, test)
    features = None if vectors is None else vectors[: len(train)]
    languages = [p.language for p in train]
    if not args.model_only:
        for controls in dict.fromkeys((args.controls, *(() if args.no_flags else (0.0,)))):
            accuracy_table(gold, groups, seeds, controls, features, languages)
        if not args.no_flags:
            flag_table(gold, groups, seeds)
    if vectors is not None:
        downstream_table(args.controls, gold, groups, train, test, seeds, vectors)
    print(f"\n{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
