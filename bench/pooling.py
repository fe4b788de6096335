"""How an ensemble version should pool its members' probabilities, checked on posts the decision never saw.

The pooling rule was compared under the "others" protocol (docs/experiment.md); this benchmark repeats the
comparison on the study's split: the fast model and the two-member encoder trained on all of train.csv, as a
retrain on those labels trains them, then test.csv scored by the mean (arithmetic pooling) and by the normalised
geometric mean (logarithmic pooling) of their probabilities. test.csv's 625 English and Spanish posts are outside
the protocol's 1,000, so they are a fresh check. Prints the scores per subset with paired bootstrap differences.

    .venv/bin/python -m bench.pooling [--out probabilities.npz]   # about 25 minutes on 2 cores

Reuses --out when it exists (the training is the slow part).
"""

import argparse
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from annotator.fastmodel import embed_texts, predict_proba, train_head
from bench.common import SHARED
from db.ensemble import pool
from db.labels import LABELS
from db.metrics import macro_f1, stance_f1
from db.study import StudyPost, read_study_csv
from trainer.config import settings_from_env
from trainer.experiment import encoder_train_and_score

DATA = Path("lingualoop-data")


def trained_probabilities(train: list[StudyPost], test: list[StudyPost]) -> dict[str, NDArray[np.float32]]:
    started = time.perf_counter()
    texts = [p.text for p in train + test]
    vectors = dict(zip(texts, embed_texts(texts, DATA / "embeddings"), strict=True))
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


def scores(gold: NDArray[np.int64], probabilities: NDArray[np.float32]) -> tuple[float, float]:
    predicted = probabilities.argmax(axis=1)
    return macro_f1(gold, predicted, range(len(LABELS))), stance_f1(gold, predicted)


def paired(
    gold: NDArray[np.int64], a: NDArray[np.float32], b: NDArray[np.float32], resamples: int = 2000
) -> list[tuple[float, float, float]]:
    """Median and 95% interval of b minus a, for 4-class and stance, over posts resampled with replacement."""
    rng = np.random.default_rng(0)
    differences = []
    for _ in range(resamples):
        idx = rng.integers(0, len(gold), len(gold))
        sa, sb = scores(gold[idx], a[idx]), scores(gold[idx], b[idx])
        differences.append((sb[0] - sa[0], sb[1] - sa[1]))
    low, mid, high = np.percentile(np.asarray(differences), [2.5, 50, 97.5], axis=0)
    return [(float(low[i]), float(mid[i]), float(high[i])) for i in range(2)]


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
    gold = np.asarray([LABELS.index(p.label) for p in test])
    languages = np.asarray([p.language for p in test])
    subsets = {
        "en + es": np.isin(languages, ["en", "es"]),
        "the other ten": ~np.isin(languages, ["en", "es"]),
        "all of test.csv": np.ones(len(test), dtype=bool),
    }
    print(f"\n{'subset':<17} {'n':>4}  {'model':<22} {'4-class':>8} {'stance':>7}")
    for subset, mask in subsets.items():
        rows = {"fast": probabilities["fast"], "encoder": probabilities["encoder"]} | {
            f"ensemble, {rule}": pooled for rule, pooled in rules.items()
        }
        for name, p in rows.items():
            four, stance = scores(gold[mask], p[mask])
            print(f"{subset:<17} {mask.sum():>4}  {name:<22} {four:8.3f} {stance:7.3f}")
        (l4, m4, h4), (ls, ms, hs) = paired(gold[mask], rules["arithmetic"][mask], rules["geometric"][mask])
        print(
            f"{subset:<17} {'':>4}  geometric - arithmetic: 4-class {m4:+.3f} [{l4:+.3f}, {h4:+.3f}], "
            f"stance {ms:+.3f} [{ls:+.3f}, {hs:+.3f}]"
        )


if __name__ == "__main__":
    main()
