"""Fine-tuning the LoRA adapter as a label-token classifier: cross-entropy over the four answer tokens' logits
at the answer position (the loss is on the answer token only), length-bucketed batches, warmup then decay."""

import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional

from db.labels import LABELS
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


def class_weights(labels: Sequence[int]) -> torch.Tensor:
    """Inverse label frequency, normalised to mean 1; labels never seen get weight 1."""
    counts = Counter(labels)
    present = [len(labels) / (len(counts) * counts[i]) if counts[i] else 1.0 for i in range(len(LABELS))]
    return torch.tensor(present, dtype=torch.float32)


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
) -> TrainResult:
    """Train the attached adapter in place on (text, label index) examples."""
    posts = loaded.template.post_ids(loaded.tokenizer, list(texts))
    return train_on_token_ids(loaded, posts, labels, settings, on_step)


def train_on_token_ids(
    loaded: LoadedModel,
    posts: list[list[int]],
    labels: Sequence[int],
    settings: TrainSettings,
    on_step: StepCallback | None = None,
) -> TrainResult:
    """The same on posts already tokenised (benchmarks feed token ids directly)."""
    if not posts:
        raise ValueError("no training examples")
    started = time.perf_counter()
    rng = random.Random(settings.seed)
    torch.manual_seed(settings.seed)
    targets = torch.tensor(list(labels), dtype=torch.long)
    weights = class_weights(list(labels)).to(loaded.device) if settings.class_balance else None
    epochs = max(1, math.ceil(settings.epochs))
    plan: list[list[int]] = []
    for _ in range(epochs):
        plan += bucketed_batches([len(p) for p in posts], settings.batch_size, rng)
    plan = plan[: max(1, round(settings.epochs * math.ceil(len(posts) / settings.batch_size)))]
    optimizer = _optimizer(loaded, settings.learning_rate)
    warmup = max(1, int(len(plan) * settings.warmup_fraction))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min((step + 1) / warmup, max(0.1, (len(plan) - step) / max(1, len(plan) - warmup))),
    )
    loaded.model.train()
    loss_value = float("nan")
    for step, batch in enumerate(plan, start=1):
        logits = label_logits(loaded, [posts[i] for i in batch])
        loss = functional.cross_entropy(logits, targets[batch].to(loaded.device), weight=weights)
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
