"""Does correcting each language's class priors make the classifier's labels better? (Issue 32, lever 2.)

Label shares differ a lot between languages (Portuguese and Arabic posts are mostly unrelated, a fifth of Italian
posts are pro), and one set of class priors, learnt mostly from English and Spanish, is applied to all. The
correction of Saerens, Latinne and Decaestecker (2002), which the findings already use to estimate shares
(annotator.reports.quantify.expectation_maximisation), can also re-weight each post's probabilities by its
language's estimated prior over the training prior. This measures it on classification F1, not on shares: a saved
protocol run (`lingualoop experiment --protocol others|lolo ... --out FILE`) re-weighted language by language
within each fold (a fold's posts of one language are what a project's pool of that language would be), paired
against the raw run on the same posts.

    .venv/bin/python -m bench.prior_shift FILE [FILE ...]   # seconds

The training prior is the shares of train.csv's labels that fold trained on, or uniform (`--uniform`, for a model
whose classes were weighted to balance), and the re-weighting can be damped (`--power 0.5`).
"""

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from annotator.reports.quantify import expectation_maximisation
from bench.common import SHARED, paired_text
from core.crossval import paired_difference, protocol_report
from core.labels import LABELS
from core.study import read_study_csv


def training_prior(labels: list[str]) -> NDArray[np.float64]:
    counts = np.array([labels.count(label) for label in LABELS], dtype=np.float64)
    prior: NDArray[np.float64] = counts / counts.sum()
    return prior


def corrected(run: dict[str, Any], lolo: bool, uniform: bool, power: float) -> NDArray[np.float64]:
    """The run's probabilities re-weighted by each language's EM prior, fold by fold."""
    posts = run["posts"]
    probabilities = np.asarray(posts["probabilities"], dtype=np.float64)
    languages, folds = np.array(posts["languages"]), np.array(posts["fold"])
    train = read_study_csv(SHARED / "train.csv")
    out = probabilities.copy()
    for language in np.unique(languages):
        trained_on = [p.label for p in train if not lolo or p.language != language]
        source = np.full(len(LABELS), 1 / len(LABELS)) if uniform else training_prior(trained_on)
        for fold in np.unique(folds[languages == language]):
            mask = (languages == language) & (folds == fold)
            prior = expectation_maximisation(probabilities[mask], source)
            weighted = probabilities[mask] * (prior / source) ** power
            out[mask] = weighted / weighted.sum(axis=1, keepdims=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--uniform", action="store_true", help="A uniform training prior.")
    parser.add_argument("--power", type=float, default=1.0, help="Damp the re-weighting (1: full).")
    args = parser.parse_args()
    for path in args.files:
        run = next(iter(json.loads(path.read_text(encoding="utf-8")).values()))
        lolo = len(set(run["posts"]["fold"])) == len(set(run["posts"]["languages"])) and all(
            len(
                {
                    lang
                    for lang, f in zip(run["posts"]["languages"], run["posts"]["fold"], strict=True)
                    if f == k
                }
            )
            == 1
            for k in set(run["posts"]["fold"])
        )
        gold, languages, folds = run["posts"]["gold"], run["posts"]["languages"], run["posts"]["fold"]
        raw = [LABELS[i] for i in np.asarray(run["posts"]["probabilities"]).argmax(axis=1)]
        fixed = [LABELS[i] for i in corrected(run, lolo, args.uniform, args.power).argmax(axis=1)]
        print(
            f"{path} ({'leave one language out' if lolo else 'others'}), training prior "
            f"{'uniform' if args.uniform else 'of its labels'}, power {args.power:g}"
        )
        for name, predicted in (("raw", raw), ("EM prior by language", fixed)):
            report = protocol_report(gold, predicted, languages, folds, resamples=200)
            pooled, mean = report["pooled"], report["folds"]["mean"]
            print(
                f"  {name:22} pooled 4-class {pooled['four_class']:.3f}, stance {pooled['stance']:.3f}; "
                f"mean over folds {mean['four_class']:.3f} / {mean['stance']:.3f}"
            )
        paired = paired_difference(gold, raw, fixed)
        print("  corrected - raw, paired: " + paired_text(paired))


if __name__ == "__main__":
    main()
