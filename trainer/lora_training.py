"""Fine-tuning the LoRA adapter as a label-token classifier: cross-entropy over the four answer tokens' logits
at the answer position (the loss is on the answer token only), weighted per example by label and language and
by the consensus's confidence (core.weighting), length-bucketed batches, warmup then decay, and a floor on the
number of steps."""

import math
import random
import time
from collections.abc import Callable, Sequence

import torch
from torch.nn import functional

from core.weighting import example_weights, loss_denominators
from trainer.config import TrainSettings
from trainer.modeling import LoadedModel, label_logits
from trainer.schedule import TrainResult, batch_plan, warmup_then_decay

StepCallback = Callable[[int, int, float], None]
"""Called as (step, total steps, loss) after each optimiser step; may raise to stop training."""


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
            from bitsandbytes.optim.adamw import PagedAdamW

            return PagedAdamW(parameters, lr=learning_rate)  # type: ignore[no-untyped-call]  # the study's paged AdamW
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
    confidences: Sequence[float] | None = None,
) -> TrainResult:
    """Train the attached adapter in place on (text, label index) examples; with their languages, examples are
    weighted by language too (settings.language_power), and with `confidences` by the consensus's confidence in
    each label (core.weighting: at 0 an example teaches nothing)."""
    posts = loaded.template.post_ids(loaded.tokenizer, list(texts))
    return train_on_token_ids(loaded, posts, labels, settings, on_step, languages, confidences)


def train_on_token_ids(
    loaded: LoadedModel,
    posts: list[list[int]],
    labels: Sequence[int],
    settings: TrainSettings,
    on_step: StepCallback | None = None,
    languages: Sequence[str] | None = None,
    confidences: Sequence[float] | None = None,
) -> TrainResult:
    """The same on posts already tokenised (benchmarks feed token ids directly)."""
    if not posts:
        raise ValueError("no training examples")
    started = time.perf_counter()
    rng = random.Random(settings.seed)
    torch.manual_seed(settings.seed)
    targets = torch.tensor(list(labels), dtype=torch.long)
    weighting = example_weights(
        list(labels),
        list(languages) if languages is not None else [""] * len(labels),
        class_balance=settings.class_balance,
        language_power=settings.language_power if languages is not None else 0.0,
        confidences=confidences,
    )
    weights = torch.tensor(weighting, dtype=torch.float32)
    denominators = torch.tensor(loss_denominators(weighting, confidences), dtype=torch.float32)
    plan = batch_plan([len(p) for p in posts], planned_steps(len(posts), settings), settings.batch_size, rng)
    optimizer = _optimizer(loaded, settings.learning_rate)
    scheduler = warmup_then_decay(optimizer, len(plan), settings.warmup_fraction, floor=0.1)
    loaded.model.train()
    loss_value = float("nan")
    for step, batch in enumerate(plan, start=1):
        logits = label_logits(loaded, [posts[i] for i in batch])
        losses = functional.cross_entropy(logits, targets[batch].to(loaded.device), reduction="none")
        # clamped: a batch of examples of confidence 0 has loss 0, not 0 / 0
        batch_sum = denominators[batch].sum().clamp(min=1e-12).to(loaded.device)
        loss = (losses * weights[batch].to(loaded.device)).sum() / batch_sum
        loss.backward()  # type: ignore[no-untyped-call]
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
