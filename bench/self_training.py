"""Does self-training the fast model on each language's unlabelled posts help? (Issue 32, lever 4.)

Per fold of a protocol (`--protocol lolo`: a language nobody labelled; `others`: a few of its posts labelled), the
fast model (e5 embeddings and its logistic-regression head, as a fast retrain trains it) predicts the fold's
posts of each language, which stand in for that language's unlabelled pool; the most confident predictions of each
predicted class (`--share` of them, so that the commonest label does not take over) join the training posts as
pseudo-labels, weighted by `--weight` times their probability, and the head is trained again (`--rounds` times).
Each setting is paired against the plain head on the same posts. The pool is the evaluated posts themselves
(transductive, as a project's pool would be), so any gain would be an upper bound.

    .venv/bin/python -m bench.self_training --protocol lolo     # about a minute, embeddings cached
    .venv/bin/python -m bench.self_training --protocol others
"""

import argparse
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from annotator.retraining.fastmodel import embed_texts, predict_proba, train_head
from bench.common import EMBEDDINGS_DIR, SHARED, paired_text
from core.crossval import Fold, paired_difference, protocol_folds, run_folds
from core.labels import LABELS
from core.study import read_study_csv

Vectors = dict[str, NDArray[np.float32]]


def pseudo_labelled(
    probabilities: NDArray[np.float32], languages: NDArray[np.str_], share: float
) -> list[int]:
    """Per language and predicted class, the indices of the `share` most confident posts (at least one)."""
    chosen: list[int] = []
    predicted = probabilities.argmax(axis=1)
    for language in np.unique(languages):
        for label in range(len(LABELS)):
            members = np.flatnonzero((languages == language) & (predicted == label))
            keep = int(np.ceil(share * len(members)))
            chosen += members[np.argsort(-probabilities[members, label])][:keep].tolist()
    return chosen


def self_trained(
    vectors: Vectors, share: float, rounds: int, weight: float
) -> Callable[[Fold], NDArray[np.float32]]:
    """A fold's predictions after `rounds` of self-training (0: the plain head)."""

    def predict(fold: Fold) -> NDArray[np.float32]:
        x = np.stack([vectors[p.text] for p in fold.train])
        y = [LABELS.index(p.label) for p in fold.train]
        languages = [p.language for p in fold.train]
        pool = np.stack([vectors[p.text] for p in fold.evaluate])
        pool_languages = np.array([p.language for p in fold.evaluate], dtype=np.str_)
        probabilities = predict_proba(train_head(x, y, languages=languages), pool)
        for _ in range(rounds):
            chosen = pseudo_labelled(probabilities, pool_languages, share)
            head = train_head(
                np.concatenate([x, pool[chosen]]),
                y + probabilities[chosen].argmax(axis=1).tolist(),
                languages=languages + pool_languages[chosen].tolist(),
                confidences=[1.0] * len(y) + (weight * probabilities[chosen].max(axis=1)).tolist(),
            )
            probabilities = predict_proba(head, pool)
        return probabilities

    return predict


def summary(name: str, run: dict[str, Any], base: dict[str, Any] | None) -> str:
    pooled, means = run["pooled"], run["folds"]["mean"]
    text = (
        f"{name:<34} pooled {pooled['four_class']:.3f} / {pooled['stance']:.3f}   "
        f"mean of folds {means['four_class']:.3f} / {means['stance']:.3f}"
    )
    if base is None:
        return text
    paired = paired_difference(base["posts"]["gold"], base["posts"]["predicted"], run["posts"]["predicted"])
    return f"{text}   paired {paired_text({m: paired[m] for m in ('four_class', 'stance')}, '; ')}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--protocol", choices=("lolo", "others"), default="lolo")
    parser.add_argument("--share", default="0.3,1", help="Shares of each class's posts pseudo-labelled.")
    parser.add_argument(
        "--weight", default="1,0.2", help="Weights of a pseudo-label (times its probability)."
    )
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    train = read_study_csv(SHARED / "train.csv")
    test = read_study_csv(SHARED / "test.csv")
    texts = [p.text for p in [*train, *test]]
    vectors = dict(zip(texts, embed_texts(texts, EMBEDDINGS_DIR), strict=True))
    folds = protocol_folds(args.protocol, train, test)
    base = run_folds(folds, self_trained(vectors, 0.0, 0, 0.0), resamples=200)
    print(f"{args.protocol}: {len(folds)} folds, {len(base['posts']['gold'])} posts (4-class / stance)")
    print(summary("plain head", base, None), flush=True)
    for share in (float(s) for s in args.share.split(",")):
        for weight in (float(w) for w in args.weight.split(",")):
            run = run_folds(folds, self_trained(vectors, share, args.rounds, weight), resamples=200)
            name = f"share {share:g}, weight {weight:g}, {args.rounds} round(s)"
            print(summary(name, run, base), flush=True)


if __name__ == "__main__":
    main()
