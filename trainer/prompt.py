"""The study's prompt idea, one template per model family, used by both training and scoring:
the instruction and the four categories, the post, then the answer as one token ("1".."4", the study's codes)."""

from dataclasses import dataclass
from typing import Any

from core.labels import LABELS

INSTRUCTION = (
    "Classify this social-media post by what it says about immigration. Answer with one digit: "
    "1 = pro-immigration, 2 = anti-immigration, 3 = neutral (about immigration, no stance), "
    "4 = unrelated to immigration."
)
ANSWERS = ("1", "2", "3", "4")
"""The answer token of each label, in LABELS order."""
_POST_SLOT = "\u2063POST\u2063"

assert len(ANSWERS) == len(LABELS)


class LabelTokenError(ValueError):
    """The tokenizer does not encode every answer as exactly one token."""


@dataclass(frozen=True)
class PromptTemplate:
    """Token ids around the post. Every prompt is prefix + post + suffix; the model's next-token logits at the
    last suffix position, restricted to `label_token_ids`, are the classifier's logits."""

    prefix_ids: tuple[int, ...]
    suffix_ids: tuple[int, ...]
    label_token_ids: tuple[int, ...]
    max_post_tokens: int

    def post_ids(self, tokenizer: Any, texts: list[str]) -> list[list[int]]:
        encoded = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=self.max_post_tokens)
        return [list(ids) for ids in encoded["input_ids"]]


def label_token_ids(tokenizer: Any) -> tuple[int, ...]:
    """One token per answer, checked: a label that needs two tokens cannot be scored in one forward pass."""
    ids = []
    for label, answer in zip(LABELS, ANSWERS, strict=True):
        tokens = tokenizer.encode(answer, add_special_tokens=False)
        if len(tokens) != 1:
            raise LabelTokenError(
                f"the tokenizer encodes the answer '{answer}' (label {label}) as {len(tokens)} tokens {tokens}; "
                "each label must be a single token"
            )
        ids.append(int(tokens[0]))
    if len(set(ids)) != len(ids):
        raise LabelTokenError(f"two labels share an answer token: {ids}")
    return tuple(ids)


def build_template(tokenizer: Any, max_post_tokens: int) -> PromptTemplate:
    """The tokenizer's chat template where it has one (instruction-tuned models), else a plain layout."""
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": f"{INSTRUCTION}\n\nPost: {_POST_SLOT}"}]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        prefix_text, suffix_text = text.split(_POST_SLOT)
        suffix_text += "Answer:"
        prefix = tokenizer.encode(prefix_text, add_special_tokens=False)
    else:
        prefix_text, suffix_text = f"{INSTRUCTION}\n\nPost: ", "\nAnswer:"
        prefix = tokenizer.encode(prefix_text, add_special_tokens=True)
    suffix = tokenizer.encode(suffix_text, add_special_tokens=False)
    return PromptTemplate(tuple(prefix), tuple(suffix), label_token_ids(tokenizer), max_post_tokens)
