"""Scoring: one row of four probabilities per post in input order whatever the batch size, progress to the end,
nothing for no posts; confidence is the top probability."""

from pathlib import Path

import numpy as np

from tests.unit.trainer.test_modeling import POSTS, _load
from trainer.label_tokens import confidence, score_texts


def test_rows_come_back_in_input_order_for_any_batch_size(tiny_llama: Path, tmp_path: Path) -> None:
    loaded = _load(tiny_llama, tmp_path)
    seen: list[tuple[int, int]] = []
    one_by_one = score_texts(loaded, POSTS, batch_size=1)
    batched = score_texts(
        loaded, POSTS, batch_size=3, on_progress=lambda done, total: seen.append((done, total))
    )
    reversed_order = score_texts(loaded, POSTS[::-1], batch_size=3)
    assert batched.shape == (len(POSTS), 4) and batched.dtype == np.float32
    assert np.allclose(one_by_one, batched, atol=1e-5)
    assert np.allclose(reversed_order[::-1], batched, atol=1e-5)
    assert np.allclose(batched.sum(axis=1), 1.0, atol=1e-5)
    assert seen == [(3, 5), (5, 5)]
    assert score_texts(loaded, [], batch_size=4).shape == (0, 4)
    assert np.array_equal(confidence(batched), batched.max(axis=1))
