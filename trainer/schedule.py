"""The training schedule both fine-tuned backends follow (LoRA, trainer/lora_training.py; the encoder,
trainer/encoder.py): batches of similar length, the planned steps, learning-rate warm-up then decay, and what a
training reports."""

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TrainResult:
    steps: int
    examples: int
    seconds: float
    final_loss: float

    @staticmethod
    def combined(results: Sequence["TrainResult"]) -> "TrainResult":
        """Several models trained one after the other: their steps, examples and time added up, the mean of
        their final losses."""
        return TrainResult(
            sum(r.steps for r in results),
            sum(r.examples for r in results),
            sum(r.seconds for r in results),
            sum(r.final_loss for r in results) / len(results),
        )

    def summary(self) -> dict[str, float]:
        """What a version's metrics keep of its training."""
        return {
            "steps": self.steps,
            "examples": self.examples,
            "seconds": round(self.seconds, 1),
            "final_loss": round(self.final_loss, 4),
        }


def bucketed_batches(
    lengths: Sequence[int], batch_size: int, rng: random.Random, bucket_batches: int = 16
) -> list[list[int]]:
    """Shuffled batches of similar-length posts: little padding, still a random order."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    span = batch_size * bucket_batches
    for start in range(0, len(order), span):
        chunk = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def batch_plan(lengths: Sequence[int], steps: int, batch_size: int, rng: random.Random) -> list[list[int]]:
    """`steps` batches: shuffled, length-bucketed passes over the examples, as many as it takes."""
    plan: list[list[int]] = []
    while len(plan) < steps:
        plan += bucketed_batches(lengths, batch_size, rng)
    return plan[:steps]


def warmup_then_decay(
    optimizer: torch.optim.Optimizer, steps: int, warmup_fraction: float, floor: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """A linear rise over the first `warmup_fraction` of the steps, then a linear decay down to `floor` times the
    peak learning rate."""
    warmup = max(1, int(steps * warmup_fraction))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(floor, (steps - step) / max(1, steps - warmup)))
    )
