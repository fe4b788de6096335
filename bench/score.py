"""Benchmark: posts per second scored by the worker's scoring path (prefix KV cache, length-sorted batches,
four label logits only) against the plain path (whole prompt per post, full sequence). Prints its figures.

    python -m bench.score [--base-model gemma3-270m] [--posts 256] [--batch-sizes 16,32]
"""

import argparse
import time

import torch

from bench.common import load, shared_rows
from trainer.label_tokens import score_texts
from trainer.modeling import label_logits, merged_for_scoring


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-model", default="gemma3-270m")
    parser.add_argument("--posts", type=int, default=256)
    parser.add_argument("--batch-sizes", default="16,32")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    texts = [row["text"] for row in shared_rows()][: args.posts]
    loaded = load(args.base_model)
    posts = loaded.template.post_ids(loaded.tokenizer, texts)
    print(
        f"model {args.base_model}, {torch.get_num_threads()} threads, {len(texts)} posts of "
        f"{sum(map(len, posts)) / len(posts):.0f} tokens on average after a "
        f"{len(loaded.template.prefix_ids)}-token instruction",
        flush=True,
    )
    score_texts(loaded, texts[:8], 8)  # warm-up
    started = time.perf_counter()
    score_texts(loaded, texts, 16)
    print(
        f"adapter not merged, prefix cache, sorted, batch 16: {len(texts) / (time.perf_counter() - started):6.1f}"
        " posts/s",
        flush=True,
    )
    started = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, 64, 16):
            label_logits(loaded, posts[start : start + 16])
    plain = 64 / (time.perf_counter() - started)
    scorer = merged_for_scoring(loaded)
    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        started = time.perf_counter()
        score_texts(scorer, texts, batch_size)
        seconds = time.perf_counter() - started
        print(
            f"worker path (merged adapter, prefix cache, sorted), batch {batch_size:>3}: "
            f"{len(texts) / seconds:6.1f} posts/s",
            flush=True,
        )
    print(
        f"plain path (adapter not merged, no prefix cache, unsorted), batch 16: {plain:6.1f} posts/s",
        flush=True,
    )


if __name__ == "__main__":
    main()
