"""Fine-tuning the LoRA adapter as a label-token classifier: cross-entropy over the four answer tokens' logits
at the answer position (the loss is on the answer token only), weighted per example by label and language
(db.weighting), length-bucketed batches, warmup then decay, and a floor on the number of steps."""

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional

from db.weighting import example_weights
from trainer.config import TrainSettings
from trainer.modeling import LoadedModel, label_logits

StepCallback = Callable[[int, int, float], None]
"""Called as (step, total steps, loss) after each optimiser step; may raise to stop training."""


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


def planned_steps(examples: int, settings: TrainSettings) -> int:
    """Optimiser steps of a round: `epochs` passes, but at least `min_steps` (within `max_epochs` passes), so that
    a round on a few dozen labels moves the model away from its zero-shot answer."""
    per_epoch = math.ceil(examples / settings.batch_size)
    wanted = max(1, round(settings.epochs * per_epoch))
    return max(wanted, min(settings.min_steps, settings.max_epochs * per_epoch))


def _optimizer(loaded: LoadedModel, learning_rate: float) -> torch.optim.Optimizer:
    parameters = [p for p in loaded.model.parameters() if p.requires_grad]
    if loaded.device.type == "cuda":
        try:
            import bitsandbytes as bnb

            return bnb.optim.PagedAdamW(parameters, lr=learning_rate)  # the study's paged AdamW
        except ImportError:
            pass
    return torch.optim.AdamW(parameters, lr=learning_rate)


def train_adapter(
    loaded: LoadedModel,
    texts: Sequence[str],
    labels: Sequence[int],
    settings: TrainSettings,
    on_step: StepCallback | None = None,
    languages: Sequence[str] | None = None,
) -> TrainResult:
    """Train the attached adapter in place on (text, label index) examples; with their languages, examples are
    weighted by language too (settings.language_power)."""
    posts = loaded.template.post_ids(loaded.tokenizer, list(texts))
    return train_on_token_ids(loaded, posts, labels, settings, on_step, languages)


def train_on_token_ids(
    loaded: LoadedModel,
    posts: list[list[int]],
    labels: Sequence[int],
    settings: TrainSettings,
    on_step: StepCallback | None = None,
    languages: Sequence[str] | None = None,
) -> TrainResult:
    """The same on posts already tokenised (benchmarks feed token ids directly)."""
    if not posts:
        raise ValueError("no training examples")
    started = time.perf_counter()
    rng = random.Random(settings.seed)
    torch.manual_seed(settings.seed)
    targets = torch.tensor(list(labels), dtype=torch.long)
    weights = torch.tensor(
        example_weights(
            list(labels),
            list(languages) if languages is not None else [""] * len(labels),
            class_balance=settings.class_balance,
            language_power=settings.language_power if languages is not None else 0.0,
        ),
        dtype=torch.float32,
    )
    plan = batch_plan([len(p) for p in posts], planned_steps(len(posts), settings), settings.batch_size, rng)
    optimizer = _optimizer(loaded, settings.learning_rate)
    scheduler = warmup_then_decay(optimizer, len(plan), settings.warmup_fraction, floor=0.1)
    loaded.model.train()
    loss_value = float("nan")
    for step, batch in enumerate(plan, start=1):
        logits = label_logits(loaded, [posts[i] for i in batch])
        losses = functional.cross_entropy(logits, targets[batch].to(loaded.device), reduction="none")
        batch_weights = weights[batch].to(loaded.device)
        loss = (losses * batch_weights).sum() / batch_weights.sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in loaded.model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = float(loss.detach())
        if on_step is not None:
            on_step(step, len(plan), loss_value)
    loaded.model.eval()
    return TrainResult(
        steps=len(plan), examples=len(posts), seconds=time.perf_counter() - started, final_loss=loss_value
    )
