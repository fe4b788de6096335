"""The 4-bit NF4 path through bitsandbytes, exercised on CPU with a tiny model (on CUDA it is the default)."""

from pathlib import Path

import pytest
import torch

from trainer.config import LoraSettings, ModelSettings, TrainSettings, quantisation_config
from trainer.label_tokens import score_texts
from trainer.lora_training import train_adapter
from trainer.modeling import load_model

bnb = pytest.importorskip("bitsandbytes", reason="bitsandbytes is part of the [train] extra")


def test_quantisation_config_follows_the_device() -> None:
    assert quantisation_config(ModelSettings(), cuda=False) is None
    config = quantisation_config(ModelSettings(), cuda=True)
    assert config.load_in_4bit and config.bnb_4bit_quant_type == "nf4"
    assert config.bnb_4bit_compute_dtype == torch.bfloat16
    assert quantisation_config(ModelSettings(quantize_4bit=False), cuda=True) is None


def test_four_bit_training_steps_on_cpu(tiny_llama: Path, tmp_path: Path) -> None:
    loaded = load_model(
        ModelSettings(base_model=str(tiny_llama), quantize_4bit=True, device="cpu"),
        LoraSettings(r=4, alpha=8),
        tmp_path,
        max_post_tokens=16,
        log=lambda m: None,
    )
    four_bit = [m for m in loaded.causal_lm.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert four_bit, "the base model's linear layers should be 4-bit"
    losses: list[float] = []
    texts = ["welcome refugees", "close the border", "asylum law passed", "football tonight"] * 4
    train_adapter(
        loaded,
        texts,
        [0, 1, 2, 3] * 4,
        TrainSettings(epochs=2, batch_size=4, learning_rate=1e-3, min_steps=0),
        on_step=lambda step, total, loss: losses.append(loss),
    )
    assert len(losses) == 8 and all(torch.isfinite(torch.tensor(losses)))
    probabilities = score_texts(loaded, texts[:4], batch_size=4)
    assert probabilities.shape == (4, 4)
