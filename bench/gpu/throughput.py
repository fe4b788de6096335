"""GPU benchmark of the worker's real code path with Llama-3.2-3B-shaped random weights (issue 8).

The weights are built from a LlamaConfig (no download), saved once to a local folder with a small tokenizer, and
loaded through `trainer.modeling.load_model` exactly as the worker loads a base model: 4-bit NF4 through
bitsandbytes with bf16 compute, or plain bf16. Posts are fed as token ids (64 per post by default) after the
worker's shared instruction. Prints, per precision:

- posts/s scored by the worker's scoring path (prefix KV cache, label-token logits only) at each batch size,
  stopping at the first batch size that runs out of memory;
- seconds per training step at batch 16 with LoRA r=64 (the study's settings);
- seconds for a full epoch of 2,625 posts (the shared corpus's training set size).

    python -m bench.gpu.throughput                                   # on a GPU machine
    python -m bench.gpu.throughput --config tiny --device cpu --precisions bf16 --batch-sizes 4,8 \\
        --epoch-posts 32 --train-steps 3                            # the CPU check of the same script
"""

import argparse
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from trainer.config import STUDY_LORA, LoraSettings, ModelSettings, TrainSettings
from trainer.lora_training import train_on_token_ids
from trainer.modeling import LoadedModel, PrefixScorer, load_model, merged_for_scoring

CONFIGS: dict[str, dict[str, Any]] = {
    # meta-llama/Llama-3.2-3B-Instruct's shape.
    "llama-3.2-3b": {
        "vocab_size": 128256,
        "hidden_size": 3072,
        "intermediate_size": 8192,
        "num_hidden_layers": 28,
        "num_attention_heads": 24,
        "num_key_value_heads": 8,
        "max_position_embeddings": 8192,
        "rope_theta": 500000.0,
        "tie_word_embeddings": True,
        "rms_norm_eps": 1e-5,
    },
    "tiny": {
        "vocab_size": 4096,
        "hidden_size": 128,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 1024,
        "tie_word_embeddings": True,
    },
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def build_weights(config_name: str, folder: Path, device: torch.device) -> Path:
    """Random weights of the named shape plus a small offline tokenizer, saved as a normal checkpoint."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from testing.tiny_models import build_tokenizer

    if (folder / "config.json").exists():
        return folder
    started = time.perf_counter()
    build_tokenizer(folder)
    config = LlamaConfig(**CONFIGS[config_name], pad_token_id=0, bos_token_id=2, eos_token_id=3)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(str(folder))
    del model
    print(f"built {config_name} random weights in {time.perf_counter() - started:.0f} s", flush=True)
    return folder


def random_posts(count: int, length: int, vocab: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(10, vocab) for _ in range(length)] for _ in range(count)]


def measure_scoring(
    loaded: LoadedModel, batch_sizes: list[int], post_tokens: int, vocab: int, batches_per_size: int
) -> dict[int, float | str]:
    scorer = PrefixScorer(merged_for_scoring(loaded))
    results: dict[int, float | str] = {}
    for batch_size in batch_sizes:
        posts = random_posts(batch_size * batches_per_size, post_tokens, vocab, batch_size)
        try:
            scorer.logits(posts[:batch_size])  # warm-up
            sync(loaded.device)
            started = time.perf_counter()
            for start in range(0, len(posts), batch_size):
                scorer.logits(posts[start : start + batch_size])
            sync(loaded.device)
            results[batch_size] = round(len(posts) / (time.perf_counter() - started), 1)
        except torch.OutOfMemoryError:
            results[batch_size] = "out of memory"
            torch.cuda.empty_cache()
            break
        print(f"  scoring batch {batch_size:>4}: {results[batch_size]} posts/s", flush=True)
    return results


def measure_training(
    loaded: LoadedModel, post_tokens: int, vocab: int, batch_size: int, steps: int, epoch_posts: int
) -> dict[str, float]:
    times: list[float] = []
    last = [time.perf_counter()]

    def on_step(step: int, total: int, loss: float) -> None:  # loss.item() already synchronised
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    settings = TrainSettings(
        epochs=1, batch_size=batch_size, learning_rate=2e-4, class_balance=False, min_steps=0
    )
    posts = random_posts(batch_size * steps, post_tokens, vocab, 1)
    labels = [i % 4 for i in range(len(posts))]
    train_on_token_ids(loaded, posts, labels, settings, on_step)
    steady = times[2:] or times
    epoch = random_posts(epoch_posts, post_tokens, vocab, 2)
    sync(loaded.device)
    started = time.perf_counter()
    train_on_token_ids(loaded, epoch, [i % 4 for i in range(len(epoch))], settings)
    sync(loaded.device)
    return {
        "seconds_per_step": round(sum(steady) / len(steady), 3),
        "epoch_seconds": round(time.perf_counter() - started, 1),
        "epoch_posts": epoch_posts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", choices=sorted(CONFIGS), default="llama-3.2-3b")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precisions", default="4bit,bf16", help="4bit, bf16 or both")
    parser.add_argument("--batch-sizes", default="32,64,128,256")
    parser.add_argument("--post-tokens", type=int, default=64)
    parser.add_argument("--batches-per-size", type=int, default=8)
    parser.add_argument("--train-batch", type=int, default=16)
    parser.add_argument("--train-steps", type=int, default=12)
    parser.add_argument("--epoch-posts", type=int, default=2625)
    parser.add_argument("--weights", type=Path, default=None, help="folder for the random weights (reused)")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}; torch {torch.__version__}", flush=True)
    folder = args.weights or Path(tempfile.gettempdir()) / f"lingualoop-{args.config}-random"
    build_weights(args.config, folder, device)
    vocab = int(CONFIGS[args.config]["vocab_size"])
    lora = STUDY_LORA if args.config != "tiny" else LoraSettings(r=8, alpha=16, dropout=0.1)
    figures: dict[str, Any] = {"device": name, "config": args.config, "post_tokens": args.post_tokens}
    for precision in args.precisions.split(","):
        settings = ModelSettings(
            base_model=str(folder), quantize_4bit=precision == "4bit", device=args.device, dtype="bfloat16"
        )
        loaded = load_model(
            settings,
            lora,
            folder.parent,
            max_post_tokens=args.post_tokens,
            log=lambda message: print(message, flush=True),
        )
        print(f"{precision}: prefix {len(loaded.template.prefix_ids)} tokens, LoRA r={lora.r}", flush=True)
        training = measure_training(
            loaded, args.post_tokens, vocab, args.train_batch, args.train_steps, args.epoch_posts
        )
        print(f"  training: {training}", flush=True)
        scoring = measure_scoring(
            loaded,
            [int(b) for b in args.batch_sizes.split(",")],
            args.post_tokens,
            vocab,
            args.batches_per_size,
        )
        figures[precision] = {"scoring_posts_per_s": scoring, "training": training}
        del loaded
        if device.type == "cuda":
            figures[precision]["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
    print(json.dumps(figures, indent=2), flush=True)
    if args.out is not None:
        args.out.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
