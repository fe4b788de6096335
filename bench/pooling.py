"""How an ensemble version should pool its members' probabilities, checked on posts the decision never saw.

The pooling rule was compared under the "others" protocol (docs/experiment.md); this benchmark repeats the
comparison on the study's split: the fast model and the default encoder (three members since 2026-12-05; the
figures in docs/benchmarks.md are from two) trained on all of train.csv, as a retrain on those labels trains
them, then test.csv scored by the mean (arithmetic pooling) and by the normalised geometric mean (logarithmic
pooling) of their probabilities. test.csv's 625 English and Spanish posts are outside the protocol's 1,000, so
they are a fresh check. Prints the scores per subset with paired bootstrap differences.

    .venv/bin/python -m bench.pooling [--out probabilities.npz]   # about 30 minutes on 2 cores

Reuses --out when it exists (the training is the slow part).
"""

import argparse
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from annotator.retraining.fastmodel import embed_texts, predict_proba, train_head
from bench.common import EMBEDDINGS_DIR, SHARED, paired_text
from core.crossval import paired_difference, scores
from core.labels import LABELS
from core.pooling import pool
from core.study import StudyPost, read_study_csv
from trainer.config import settings_from_env
from trainer.experiment import encoder_train_and_score

DATA = Path("lingualoop-data")


def trained_probabilities(train: list[StudyPost], test: list[StudyPost]) -> dict[str, NDArray[np.float32]]:
    started = time.perf_counter()
    texts = [p.text for p in train + test]
    vectors = dict(zip(texts, embed_texts(texts, EMBEDDINGS_DIR), strict=True))
    head = train_head(
        np.stack([vectors[p.text] for p in train]),
        [LABELS.index(p.label) for p in train],
        languages=[p.language for p in train],
    )
    fast = predict_proba(head, np.stack([vectors[p.text] for p in test]))
    print(f"fast model trained and scored in {time.perf_counter() - started:.0f} s", flush=True)
    settings = settings_from_env(DATA)
    result, encoder = encoder_train_and_score(
        "encoder", train, test, settings, lambda m: print(m, flush=True)
    )
    print(f"encoder ({settings.encoder.members} members): {result.steps} steps in {result.seconds:.0f} s")
    return {"fast": fast, "encoder": encoder}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("pooling-probabilities.npz"))
    args = parser.parse_args()
    train, test = read_study_csv(SHARED / "train.csv"), read_study_csv(SHARED / "test.csv")
    if args.out.exists():
        saved = np.load(args.out)
        probabilities = {name: saved[name] for name in ("fast", "encoder")}
        print(f"probabilities from {args.out}")
    else:
        probabilities = trained_probabilities(train, test)
        np.savez(args.out, **probabilities)
    members = [probabilities["fast"], probabilities["encoder"]]
    rules = {"arithmetic": pool(members, "arithmetic"), "geometric": pool(members, "geometric")}
    gold = np.asarray([LABELS.index(p.label) for p in test], dtype=np.int64)
    languages = np.asarray([p.language for p in test])
    subsets = {
        "en + es": np.isin(languages, ["en", "es"]),
        "the other ten": ~np.isin(languages, ["en", "es"]),
        "all of test.csv": np.ones(len(test), dtype=bool),
    }
    models = {"fast": probabilities["fast"], "encoder": probabilities["encoder"]} | {
        f"ensemble, {rule}": pooled for rule, pooled in rules.items()
    }
    predicted = {name: p.argmax(axis=1).astype(np.int64) for name, p in models.items()}
    print(f"\n{'subset':<17} {'n':>4}  {'model':<22} {'4-class':>8} {'stance':>7}")
    for subset, mask in subsets.items():
        for name, labels in predicted.items():
            score = scores(gold[mask], labels[mask])
            print(
                f"{subset:<17} {mask.sum():>4}  {name:<22} {score['four_class']:8.3f} {score['stance']:7.3f}"
            )
        named = {
            name: [LABELS[i] for i in predicted[name][mask]]
            for name in ("ensemble, arithmetic", "ensemble, geometric")
        }
        difference = paired_difference(
            [LABELS[i] for i in gold[mask]], named["ensemble, arithmetic"], named["ensemble, geometric"], 2000
        )
        print(f"{subset:<17} {'':>4}  geometric - arithmetic: " + paired_text(difference))


if __name__ == "__main__":
    main()
