"""Scoring posts: softmax over the four label tokens' logits at the answer position, one forward pass per
batch (no generation), batches sorted by length, the shared instruction's key/value cache reused."""

from collections.abc import Sequence

import numpy as np
import torch
from numpy.typing import NDArray

from core.progress import CountProgress
from trainer.modeling import LoadedModel, PrefixScorer


def score_texts(
    loaded: LoadedModel, texts: Sequence[str], batch_size: int, on_progress: CountProgress | None = None
) -> NDArray[np.float32]:
    """Probabilities of shape (len(texts), 4), columns in LABELS order, rows in the order of `texts`."""
    probabilities = np.zeros((len(texts), 4), dtype=np.float32)
    if not texts:
        return probabilities
    loaded.model.eval()
    posts = loaded.template.post_ids(loaded.tokenizer, list(texts))
    order = sorted(range(len(posts)), key=lambda i: len(posts[i]))
    scorer = PrefixScorer(loaded)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        logits = scorer.logits([posts[i] for i in batch])
        probabilities[batch] = torch.softmax(logits, dim=-1).cpu().numpy()
        if on_progress is not None:
            on_progress(min(start + batch_size, len(order)), len(order))
    return probabilities


def confidence(probabilities: NDArray[np.float32]) -> NDArray[np.float32]:
    """The top probability of each row: the model's confidence (low = a candidate for labelling)."""
    return probabilities.max(axis=1)  # type: ignore[no-any-return]
