"""The label-token classifier on tiny random models: the prompt, the label-token check, the prefix-cached
scoring path against the plain one, adapters saved and resumed."""

from pathlib import Path

import numpy as np
import pytest
import torch

from trainer.config import LoraSettings, ModelSettings
from trainer.label_tokens import score_texts
from trainer.modeling import PrefixScorer, label_logits, load_model, merged_for_scoring, save_adapter
from trainer.prompt import ANSWERS, LabelTokenError, build_template, label_token_ids

POSTS = [
    "Refugees welcome!",
    "Close the border now, no more asylum seekers",
    "Nice weather today",
    "مرحبا باللاجئين في بلدنا",
    "Parliament debates the new migration law",
]


def _load(path: Path, tmp_path: Path, adapter: Path | None = None, **model: object):
    model.setdefault("dtype", "float32")  # exact comparisons; bfloat16 has its own test below
    return load_model(
        ModelSettings(base_model=str(path), **model),
        LoraSettings(r=4, alpha=8),  # type: ignore[arg-type]
        tmp_path / "models",
        max_post_tokens=32,
        adapter=adapter,
        log=lambda m: None,
    )


def test_template_and_label_tokens(tiny_model: Path, tmp_path: Path) -> None:
    loaded = _load(tiny_model, tmp_path)
    template = loaded.template
    assert len(template.label_token_ids) == 4 and len(set(template.label_token_ids)) == 4
    assert [loaded.tokenizer.decode([i]) for i in template.label_token_ids] == list(ANSWERS)
    text = loaded.tokenizer.decode(list(template.prefix_ids) + list(template.suffix_ids))
    assert "1 = pro-immigration" in text and text.rstrip().endswith("Answer:")
    if loaded.tokenizer.chat_template:
        assert "<start_of_turn>user" in text and "<start_of_turn>model" in text


class _SplittingTokenizer:
    chat_template = None

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [ord(c) for c in f"#{text}"]  # every answer becomes two tokens


def test_label_token_check_gives_a_clear_error() -> None:
    with pytest.raises(LabelTokenError, match="each label must be a single token"):
        label_token_ids(_SplittingTokenizer())
    with pytest.raises(LabelTokenError):
        build_template(_SplittingTokenizer(), 16)


def test_prefix_cache_gives_the_plain_path_probabilities(tiny_model: Path, tmp_path: Path) -> None:
    loaded = _load(tiny_model, tmp_path)
    loaded.model.eval()
    posts = loaded.template.post_ids(loaded.tokenizer, POSTS)
    with torch.inference_mode():
        plain = torch.softmax(label_logits(loaded, posts), dim=-1)
    cached = torch.softmax(PrefixScorer(loaded).logits(posts), dim=-1)
    assert torch.allclose(plain, cached, atol=1e-5)
    scored = score_texts(loaded, POSTS, batch_size=2)  # length-sorted batches, rows back in input order
    assert np.allclose(scored, plain.numpy(), atol=1e-5)
    assert np.allclose(scored.sum(axis=1), 1.0, atol=1e-5)


def test_adapter_saved_and_resumed(tiny_llama: Path, tmp_path: Path) -> None:
    loaded = _load(tiny_llama, tmp_path)
    with torch.no_grad():
        for name, parameter in loaded.model.named_parameters():
            if "lora_B" in name:
                parameter.add_(0.05)  # a trained adapter, as far as the test is concerned
    expected = PrefixScorer(loaded).logits(loaded.template.post_ids(loaded.tokenizer, POSTS))
    save_adapter(loaded, tmp_path / "adapter", {"model_version": 1})
    assert (tmp_path / "adapter" / "adapter_config.json").exists()
    assert (tmp_path / "adapter" / "lingualoop.json").exists()
    resumed = _load(tiny_llama, tmp_path, adapter=tmp_path / "adapter")
    again = PrefixScorer(resumed).logits(resumed.template.post_ids(resumed.tokenizer, POSTS))
    assert torch.allclose(expected, again, atol=1e-5)
    fresh = _load(tiny_llama, tmp_path)
    assert not torch.allclose(
        expected, PrefixScorer(fresh).logits(fresh.template.post_ids(fresh.tokenizer, POSTS)), atol=1e-4
    )
    trainable = [n for n, p in resumed.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def test_bfloat16_and_merged_scoring_stay_close_to_float32(tiny_gemma: Path, tmp_path: Path) -> None:
    reference = _load(tiny_gemma, tmp_path)
    with torch.no_grad():
        for name, parameter in reference.model.named_parameters():
            if "lora_B" in name:
                parameter.add_(0.05)
    expected = score_texts(reference, POSTS, batch_size=2)
    save_adapter(reference, tmp_path / "adapter", {})
    merged = merged_for_scoring(reference)
    assert np.allclose(score_texts(merged, POSTS, batch_size=2), expected, atol=1e-5)
    half = _load(tiny_gemma, tmp_path, adapter=tmp_path / "adapter", dtype="bfloat16")
    assert next(half.causal_lm.parameters()).dtype == torch.bfloat16
    assert np.allclose(score_texts(merged_for_scoring(half), POSTS, batch_size=2), expected, atol=0.02)
