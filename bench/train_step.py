"""Benchmark: seconds per training step (batch of 8 posts) of the worker's training path. Prints its figures.

python -m bench.train_step [--base-model gemma3-270m] [--steps 12] [--batch-size 8] [--r 16]
"""

import argparse
import time

import torch

from bench.common import load, shared_rows
from core.labels import LABELS
from trainer.config import TrainSettings
from trainer.lora_training import train_adapter


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-model", default="gemma3-270m")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--r", type=int, default=16)
    parser.add_argument("--dropout", type=float, default=0.0)
    args = parser.parse_args()
    rows = shared_rows()[: args.steps * args.batch_size]
    loaded = load(args.base_model, r=args.r, dropout=args.dropout)
    posts = loaded.template.post_ids(loaded.tokenizer, [row["text"] for row in rows])
    prompt = len(loaded.template.prefix_ids) + len(loaded.template.suffix_ids)
    times: list[float] = []
    last = [time.perf_counter()]

    def on_step(step: int, total: int, loss: float) -> None:
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    train_adapter(
        loaded,
        [row["text"] for row in rows],
        [LABELS.index(row["label"]) for row in rows],
        TrainSettings(epochs=1, batch_size=args.batch_size, min_steps=0),
        on_step=on_step,
    )
    steady = times[2:] or times
    print(
        f"model {args.base_model}, LoRA r={args.r} dropout {args.dropout}, {torch.get_num_threads()} threads, batch {args.batch_size}, "
        f"posts of {sum(map(len, posts)) / len(posts):.0f} tokens + {prompt} prompt tokens: "
        f"{sum(steady) / len(steady):.2f} s per step (mean of {len(steady)} steps after 2 warm-up steps)",
        flush=True,
    )


if __name__ == "__main__":
    main()
