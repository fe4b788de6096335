"""Training the adapter: the loss falls on a learnable task, batches are bucketed by length, classes balanced."""

import random
from pathlib import Path

import torch

from trainer.config import LoraSettings, ModelSettings, TrainSettings
from trainer.label_tokens import score_texts
from trainer.lora_training import planned_steps, train_adapter
from trainer.modeling import load_model
from trainer.schedule import bucketed_batches

TEMPLATES = {
    0: "welcome refugees {}",
    1: "close the border {}",
    2: "the asylum law {}",
    3: "football match {}",
}


def test_bucketed_batches_cover_every_example_once() -> None:
    lengths = [random.Random(i).randint(1, 90) for i in range(103)]
    batches = bucketed_batches(lengths, 8, random.Random(0))
    flat = sorted(i for batch in batches for i in batch)
    assert flat == list(range(103))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 20  # similar lengths together: little padding


def test_a_round_on_few_labels_makes_at_least_min_steps() -> None:
    settings = TrainSettings(epochs=2, batch_size=8, min_steps=60, max_epochs=10)
    assert planned_steps(42, settings) == 60  # 2 epochs would be 12 steps
    assert planned_steps(2_000, settings) == 500  # many labels: the epochs decide
    assert planned_steps(5, settings) == 10  # at most max_epochs passes over 5 posts (1 batch each)
    assert planned_steps(42, TrainSettings(epochs=2, batch_size=8, min_steps=0)) == 12


def test_loss_falls_and_predictions_follow(tiny_llama: Path, tmp_path: Path) -> None:
    loaded = load_model(
        ModelSettings(base_model=str(tiny_llama)),
        LoraSettings(r=8, alpha=16, dropout=0.0),
        tmp_path,
        max_post_tokens=16,
        log=lambda m: None,
    )
    texts = [TEMPLATES[i % 4].format(i) for i in range(64)]
    labels = [i % 4 for i in range(64)]
    losses: list[float] = []
    result = train_adapter(
        loaded,
        texts,
        labels,
        TrainSettings(epochs=12, batch_size=8, learning_rate=5e-3),
        on_step=lambda step, total, loss: losses.append(loss),
    )
    assert result.steps == len(losses) == 96
    assert sum(losses[-8:]) / 8 < 0.5 * sum(losses[:8]) / 8
    probabilities = score_texts(loaded, [TEMPLATES[i].format(1000 + i) for i in range(4)], batch_size=4)
    assert (probabilities.argmax(axis=1) == [0, 1, 2, 3]).sum() >= 3
    assert not any(p.requires_grad for n, p in loaded.model.named_parameters() if "lora_" not in n)
    assert torch.isfinite(torch.tensor(losses)).all()


def _adapter_after(
    tiny_llama: Path, tmp_path: Path, labels: list[int], confidences: list[float]
) -> list[torch.Tensor]:
    loaded = load_model(
        ModelSettings(base_model=str(tiny_llama)),
        LoraSettings(r=4, alpha=8, dropout=0.0),
        tmp_path,
        max_post_tokens=16,
        log=lambda m: None,
    )
    texts = [TEMPLATES[i % 4].format(i) for i in range(len(labels))]
    settings = TrainSettings(epochs=1, batch_size=4, min_steps=4, learning_rate=5e-3)
    train_adapter(loaded, texts, labels, settings, languages=["en"] * len(labels), confidences=confidences)
    return [p.detach().clone() for n, p in loaded.model.named_parameters() if "lora_" in n]


def test_a_post_of_confidence_zero_teaches_the_adapter_nothing(tiny_llama: Path, tmp_path: Path) -> None:
    labels = [i % 4 for i in range(8)]
    other = [*labels[:-1], 0]  # the last post's label changed (3 -> 0)
    zero = [1.0] * 7 + [0.0]
    first, second = (_adapter_after(tiny_llama, tmp_path, chosen, zero) for chosen in (labels, other))
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    full = [1.0] * 8
    first, second = (_adapter_after(tiny_llama, tmp_path, chosen, full) for chosen in (labels, other))
    assert not all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
