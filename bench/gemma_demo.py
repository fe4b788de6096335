"""The demo's first LoRA Retrain on the real packaged Gemma-3-270M, as the worker trains it (default settings, the
round's 60-step floor) on the demo's 42 seed labels, scored on its 70 eval posts: which labels it predicts, how
often, and macro-F1. Two epochs (12 steps) once left Gemma at its zero-shot answer (`pro` for 55 of 70, macro-F1
0.19); the floor is what fixed it (docs/experiment.md). About 5 minutes on 2 CPU cores, the conversion included.

    .venv/bin/python -m bench.gemma_demo [--seed N]
"""

import argparse
import csv
import time
from collections import Counter

import torch

from annotator.demo import demo_corpus_path
from bench.common import MODELS_DIR
from core.labels import LABELS
from core.metrics import evaluate_by_language
from trainer.config import PACKAGED_GEMMA, LoraSettings, ModelSettings, TrainSettings
from trainer.label_tokens import score_texts
from trainer.lora_training import train_adapter
from trainer.modeling import load_model, merged_for_scoring


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    rows = list(csv.DictReader(demo_corpus_path().open(encoding="utf-8")))
    seeds = [r for r in rows if r["split"] == "pool" and r["label"]]
    gold = [r for r in rows if r["split"] == "eval"]
    settings = TrainSettings(seed=args.seed)
    started = time.perf_counter()
    loaded = load_model(
        ModelSettings(base_model=PACKAGED_GEMMA),
        LoraSettings(),
        MODELS_DIR,
        max_post_tokens=settings.max_post_tokens,
    )
    print(f"loaded in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    result = train_adapter(
        loaded,
        [r["text"] for r in seeds],
        [LABELS.index(r["label"]) for r in seeds],
        settings,
        languages=[r["lang"] for r in seeds],
    )
    print(f"{result.steps} steps on {len(seeds)} labels in {time.perf_counter() - started:.0f} s")
    probabilities = score_texts(merged_for_scoring(loaded), [r["text"] for r in gold], batch_size=16)
    predicted = [LABELS[i] for i in probabilities.argmax(axis=1)]
    metrics = evaluate_by_language([r["label"] for r in gold], predicted, [r["lang"] for r in gold])
    print(f"predicted on {len(gold)} eval posts: {dict(Counter(predicted))}")
    print(f"macro-F1 {metrics['all']['macro_f1']:.3f}")


if __name__ == "__main__":
    main()
