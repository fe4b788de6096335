"""The encoder backend's model code on a tiny random e5: it learns, saves only what trained, and loads back to
the same probabilities."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.ao.quantization import quantize_dynamic

from core.labels import LABELS
from testing.tiny_models import tiny_e5
from trainer import encoder
from trainer.config import EncoderSettings
from trainer.encoder import (
    INT8_PARTS,
    SETTINGS_FILE,
    WEIGHTS_FILE,
    Int8Linear,
    LoadedEncoder,
    encoder_probabilities,
    load_encoder,
    load_members,
    members_probabilities,
    new_encoder,
    save_encoder,
    save_members,
    scoring_copies,
    shared_depth,
    train_encoder,
    train_members,
)

POSTS = {
    "pro": "refugees welcome",
    "anti": "no migrants no",
    "neutral": "the migrants de the",
    "unrelated": "xyz 123 !!",
}


def _data(copies: int = 6) -> tuple[list[str], list[int], list[str]]:
    texts, labels, languages = [], [], []
    for i in range(copies):
        for label, text in POSTS.items():
            texts.append(f"{text} {'abc'[: i % 3]}")
            labels.append(LABELS.index(label))
            languages.append("en" if i % 2 else "tr")
    return texts, labels, languages


def test_a_tiny_encoder_learns_separable_posts() -> None:
    base = tiny_e5()
    loaded = new_encoder(EncoderSettings(learning_rate=3e-3, head_lr_factor=3, epochs=30, batch_size=8), base)
    frozen = loaded.model.encoder.embeddings.word_embeddings.weight.clone()
    texts, labels, languages = _data()
    before = encoder_probabilities(loaded, texts).argmax(axis=1)
    seen: list[float] = []
    result = train_encoder(loaded, texts, labels, languages, lambda step, total, loss: seen.append(loss))
    after = encoder_probabilities(loaded, texts).argmax(axis=1)
    assert result.steps == len(seen) == 90 and result.examples == 24
    assert (after == np.array(labels)).mean() == 1.0 > (before == np.array(labels)).mean()
    assert np.mean(seen[-10:]) < np.mean(seen[:10]) / 3
    assert torch.equal(loaded.model.encoder.embeddings.word_embeddings.weight, frozen)  # frozen stays frozen
    assert not loaded.model.training  # left in eval mode


def test_a_bfloat16_round_learns_and_keeps_its_weights_in_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    """The warm round's bfloat16 (warm_bf16): the layers compute in bfloat16 where the CPU does so natively
    (forced here, so that the test means the same on every CPU: torch emulates it where there is no hardware),
    the weights and what is saved stay float32, and it learns as float32 does."""
    monkeypatch.setattr(encoder, "native_bf16", lambda: True)
    settings = EncoderSettings(learning_rate=3e-3, head_lr_factor=3, epochs=30, batch_size=8)
    texts, labels, languages = _data()
    loaded = new_encoder(settings, tiny_e5())
    seen: list[float] = []
    computed: set[torch.dtype] = set()
    loaded.model.head.register_forward_hook(lambda _m, _i, out: computed.add(out.dtype))
    train_encoder(loaded, texts, labels, languages, lambda _s, _t, loss: seen.append(loss), bf16=True)
    assert computed == {torch.bfloat16}
    after = encoder_probabilities(loaded, texts).argmax(axis=1)
    assert (after == np.array(labels)).mean() == 1.0
    assert np.mean(seen[-10:]) < np.mean(seen[:10]) / 3
    assert {p.dtype for p in loaded.model.parameters()} == {torch.float32}


def test_a_saved_version_keeps_what_trained_and_scores_the_same(tmp_path: Path) -> None:
    base = tiny_e5()
    loaded = new_encoder(EncoderSettings(epochs=2, min_steps=3, batch_size=8, max_tokens=16), base)
    texts, labels, languages = _data(2)
    train_encoder(loaded, texts, labels, languages)
    save_encoder(loaded, tmp_path / "v1", {"model_version": 1})
    assert (tmp_path / "v1" / SETTINGS_FILE).exists()
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "v1" / WEIGHTS_FILE))
    assert "head.weight" in saved and "encoder.embeddings.word_embeddings.weight" not in saved
    again = load_encoder(tmp_path / "v1", base)
    assert again.settings.max_tokens == 16
    probabilities = encoder_probabilities(again, texts)
    assert np.allclose(probabilities, encoder_probabilities(loaded, texts), atol=1e-6)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_long_posts_are_cut_to_max_tokens() -> None:
    loaded = new_encoder(EncoderSettings(max_tokens=8), tiny_e5())
    ids = loaded.token_ids(["refugees welcome " * 50])[0]
    assert len(ids) == 8 and ids[0] == loaded.tokenizer.bos and ids[-1] == loaded.tokenizer.eos


def test_members_are_seeded_apart_averaged_and_saved_each(tmp_path: Path) -> None:
    base = tiny_e5()
    settings = EncoderSettings(epochs=2, min_steps=3, batch_size=8, max_tokens=16, members=2, seed=5)
    texts, labels, languages = _data(2)
    steps: list[tuple[int, int]] = []
    members, result = train_members(
        settings,
        texts,
        labels,
        languages,
        lambda member, step, total, loss: steps.append((member, step)),
        base,
    )
    assert [m.settings.seed for m in members] == [5, 6]
    assert result.steps == len(steps) == 6 and steps[0] == (0, 1) and steps[-1] == (1, 3)
    each = [encoder_probabilities(m, texts) for m in members]
    assert not np.allclose(each[0], each[1])  # different heads and batch orders
    counted: list[tuple[int, int]] = []
    mean = members_probabilities(members, texts, report=lambda done, total: counted.append((done, total)))
    assert np.allclose(mean, (each[0] + each[1]) / 2, atol=1e-6)
    assert counted[-1] == (len(texts), len(texts))  # posts, as one member counts them
    assert [done for done, _ in counted] == sorted(done for done, _ in counted)
    save_members(members, tmp_path / "v1", {"model_version": 1})
    assert (tmp_path / "v1" / WEIGHTS_FILE).exists() and (
        tmp_path / "v1" / "member-2" / WEIGHTS_FILE
    ).exists()
    again = load_members(tmp_path / "v1", base)
    assert [m.settings.seed for m in again] == [5, 6]
    assert np.allclose(members_probabilities(again, texts), mean, atol=1e-6)


@pytest.mark.parametrize(("frozen_layers", "depth"), [(4, 1), (1, 1), (0, 0)])
def test_members_share_their_frozen_layers_and_score_as_each_alone(
    tmp_path: Path, frozen_layers: int, depth: int
) -> None:
    base = tiny_e5()
    settings = EncoderSettings(epochs=1, min_steps=2, batch_size=8, frozen_layers=frozen_layers, members=3)
    texts, labels, languages = _data(2)
    members, _ = train_members(settings, texts, labels, languages, base=base)
    save_members(members, tmp_path / "v1", {"model_version": 1})
    for loaded in (members, load_members(tmp_path / "v1", base)):
        assert (
            shared_depth(loaded) == depth
        )  # e5-small's four frozen of twelve; this tiny base keeps its top one
        embeddings = {id(m.model.encoder.embeddings) for m in loaded}
        assert len(embeddings) == (1 if depth else 3)  # one copy in memory, unless the embeddings trained
        alone = np.mean([encoder_probabilities(m, texts) for m in loaded], axis=0)
        np.testing.assert_allclose(members_probabilities(loaded, texts, batch_size=5), alone, atol=1e-6)
    assert (
        shared_depth([members[0], members[1], new_encoder(settings, base)]) == 0
    )  # not shared: each its own


def _changed_by_training(loaded: LoadedEncoder) -> set[str]:
    """The encoder's parameters that one training on _data(2) changes."""
    before = {name: p.detach().clone() for name, p in loaded.model.encoder.named_parameters()}
    texts, labels, languages = _data(2)
    train_encoder(loaded, texts, labels, languages)
    return {name for name, p in loaded.model.encoder.named_parameters() if not torch.equal(before[name], p)}


def test_frozen_layers_keep_the_embeddings_and_lowest_layers_and_train_the_rest(tmp_path: Path) -> None:
    base = tiny_e5(layers=3)
    loaded = new_encoder(EncoderSettings(epochs=2, min_steps=4, batch_size=8, frozen_layers=2), base)
    changed = _changed_by_training(loaded)
    texts = _data(2)[0]
    assert changed and all(name.startswith("encoder.layer.2.") for name in changed)
    from safetensors.torch import load_file

    save_encoder(loaded, tmp_path / "v1", {"model_version": 1})
    saved = set(load_file(str(tmp_path / "v1" / WEIGHTS_FILE)))
    assert not any(name.startswith(("encoder.embeddings.", "encoder.encoder.layer.0.")) for name in saved)
    again = load_encoder(tmp_path / "v1", base)
    assert again.settings.frozen_layers == 2
    assert np.allclose(encoder_probabilities(again, texts), encoder_probabilities(loaded, texts), atol=1e-6)


def test_frozen_layers_leave_a_small_base_its_top_layer_and_zero_only_the_word_embeddings() -> None:
    for frozen_layers, trained in ((4, {"encoder.layer.1."}), (0, {"embeddings.", "encoder.layer."})):
        loaded = new_encoder(EncoderSettings(epochs=2, min_steps=4, frozen_layers=frozen_layers), tiny_e5())
        changed = _changed_by_training(loaded)
        assert "embeddings.word_embeddings.weight" not in changed
        assert {prefix for prefix in trained if any(name.startswith(prefix) for name in changed)} == trained
        assert all(name.startswith(tuple(trained)) for name in changed)
    with pytest.raises(ValueError, match="negative"):
        new_encoder(EncoderSettings(frozen_layers=-1), tiny_e5())


def test_a_version_saved_before_frozen_layers_loads_as_it_trained(tmp_path: Path) -> None:
    base = tiny_e5()
    loaded = new_encoder(EncoderSettings(epochs=1, min_steps=2, batch_size=8, frozen_layers=0), base)
    texts, labels, languages = _data(2)
    train_encoder(loaded, texts, labels, languages)
    save_encoder(loaded, tmp_path / "old", {"model_version": 1})
    settings_file = tmp_path / "old" / SETTINGS_FILE
    record = json.loads(settings_file.read_text(encoding="utf-8"))
    del record["settings"]["frozen_layers"]
    settings_file.write_text(json.dumps(record), encoding="utf-8")
    again = load_encoder(tmp_path / "old", base)
    assert again.settings.frozen_layers == 0
    assert np.allclose(encoder_probabilities(again, texts), encoder_probabilities(loaded, texts), atol=1e-6)


def _trained_after(labels: list[int], confidences: list[float]) -> dict[str, torch.Tensor]:
    loaded = new_encoder(EncoderSettings(epochs=2, min_steps=4, batch_size=8, max_tokens=16), tiny_e5())
    texts, _, languages = _data(2)
    train_encoder(loaded, texts, labels, languages, confidences=confidences)
    return {name: p.detach().clone() for name, p in loaded.model.named_parameters() if p.requires_grad}


def test_a_post_of_confidence_zero_teaches_nothing_and_of_confidence_one_does() -> None:
    _, labels, _ = _data(2)
    other = [*labels[:-1], (labels[-1] + 1) % 4]  # the last post's label changed
    zero = [1.0] * (len(labels) - 1) + [0.0]
    first, second = _trained_after(labels, zero), _trained_after(other, zero)
    assert all(torch.equal(first[name], second[name]) for name in first)  # its label made no difference
    full = [1.0] * len(labels)
    first, second = _trained_after(labels, full), _trained_after(other, full)
    assert not all(torch.equal(first[name], second[name]) for name in first)


def test_scoring_copies_are_int8_and_leave_the_members_as_they_trained(
    tmp_path: Path,
) -> None:
    settings = EncoderSettings(epochs=1, min_steps=2, batch_size=8, frozen_layers=1, members=2)
    texts, labels, languages = _data(2)
    base = tiny_e5()
    members, _ = train_members(settings, texts, labels, languages, base=base)
    before = members_probabilities(members, texts)
    copies = scoring_copies(members)
    layers = copies[0].model.encoder.encoder.layer
    for layer in layers:  # every linear layer, the frozen ones the copies share included
        assert all(isinstance(layer.get_submodule(name), Int8Linear) for name in INT8_PARTS)
    assert copies[1].model.encoder.encoder.layer[0] is layers[0]  # still shared, quantised once
    assert shared_depth(copies) == shared_depth(members) == 1
    assert copies[0].model.encoder.embeddings is members[0].model.encoder.embeddings  # not copied
    quantised = members_probabilities(copies, texts)
    assert not np.array_equal(quantised, before)
    np.testing.assert_allclose(quantised, before, atol=0.02)
    # The members themselves are untouched: they score, save and load as they trained.
    np.testing.assert_array_equal(members_probabilities(members, texts), before)
    save_members(members, tmp_path / "v1", {"model_version": 1})
    np.testing.assert_allclose(
        members_probabilities(load_members(tmp_path / "v1", base), texts), before, atol=1e-6
    )
    off = scoring_copies([replace(m, settings=replace(m.settings, int8_scoring=False)) for m in members])
    assert isinstance(off[0].model.encoder.encoder.layer[-1].attention.self.query, nn.Linear)
    # A version saved under scheme 1 scores as it was evaluated: four of its trained layers' linears, one scale.
    first = scoring_copies([replace(m, settings=replace(m.settings, int8_scheme=1)) for m in members])
    top, bottom = first[0].model.encoder.encoder.layer[-1], first[0].model.encoder.encoder.layer[0]
    assert not isinstance(top.attention.self.query, nn.Linear | Int8Linear)  # torch's own dynamic int8
    assert isinstance(top.output.dense, nn.Linear) and isinstance(bottom.attention.self.query, nn.Linear)


@torch.inference_mode()
def test_int8_linear_multiplies_the_large_channels_in_float32_and_leaves_its_input_as_it_was() -> None:
    torch.manual_seed(0)
    linear = nn.Linear(64, 32)
    x = torch.randn(8, 10, 64)
    x[..., 5] *= 60.0  # one channel of very large values, as BERT's layers have
    expected, before = linear(x), x.clone()
    got = Int8Linear(linear, large=6.0)(x)
    assert torch.equal(x, before)  # zeroed in place for the int8 product, then put back
    error = (got - expected).abs().max().item()
    plain = quantize_dynamic(nn.Sequential(linear), {nn.Linear}, dtype=torch.qint8)[0](x)  # type: ignore[no-untyped-call]
    assert error < 0.05 * expected.abs().max().item()
    assert error < (plain - expected).abs().max().item() / 5  # one scale for all rounds the rest coarsely
    small = torch.randn(4, 64)  # no channel beyond 6: all in int8
    np.testing.assert_allclose(Int8Linear(linear, 6.0)(small), linear(small), atol=0.05)
