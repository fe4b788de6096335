"""The fast head file: its numpy arithmetic against scikit-learn's, and one format for both sides (a head the web
side saves is read by the worker's scorer with the web side's probabilities)."""

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from annotator.retraining.fastmodel import ENCODER, embed_texts, predict_proba, save_head, train_head
from core.fast_head import FAST_HEAD_FILE, FastHead, head_probabilities, read_head, write_head
from trainer.version_scorers import FastScorer


@pytest.mark.parametrize("classes", [(0, 1, 2, 3), (0, 2, 3), (1, 3)])
def test_head_probabilities_are_scikit_learn_s(classes: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 8)).astype(np.float32)
    labels = np.array([classes[i % len(classes)] for i in range(60)])
    model = LogisticRegression(max_iter=500).fit(features, labels)
    ours = head_probabilities(
        features, model.coef_.astype(np.float32), model.intercept_.astype(np.float32), model.classes_
    )
    expected = np.zeros((60, 4))
    expected[:, model.classes_] = model.predict_proba(features)
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_write_then_read_gives_the_same_head(tmp_path: Path) -> None:
    head = FastHead(
        coef=np.arange(6, dtype=np.float32).reshape(2, 3),
        intercept=np.array([0.5, -0.5], dtype=np.float32),
        classes=np.array([1, 3], dtype=np.int64),
        encoder="some/encoder",
    )
    written = write_head(head, tmp_path / "version-1")
    assert written == tmp_path / "version-1" / FAST_HEAD_FILE
    assert [p.name for p in written.parent.iterdir()] == [FAST_HEAD_FILE]  # no partial file left behind
    read = read_head(written)
    assert read.encoder == "some/encoder"
    for name in ("coef", "intercept", "classes"):
        np.testing.assert_array_equal(getattr(read, name), getattr(head, name))
    assert read.classes.dtype == np.int64 and read.coef.dtype == np.float32


TEXTS = [
    "Refugees are welcome here",
    "Los refugiados son bienvenidos aquí",
    "Close the borders now",
    "Schließt die Grenzen sofort",
    "The match ended 2-1 tonight",
    "Das Spiel endete heute Abend 2:1",
    "Nobody knows what to think about migration",
    "Personne ne sait quoi penser de la migration",
]


@pytest.mark.parametrize("labels", [[0, 1, 2, 3], [0, 3]])
def test_a_head_the_web_side_saves_scores_alike_in_the_worker(tmp_path: Path, labels: list[int]) -> None:
    vectors = embed_texts(TEXTS, tmp_path / "embeddings")
    model = train_head(vectors, [labels[i // 2 % len(labels)] for i in range(len(TEXTS))])
    head_file = save_head(model, tmp_path / "version-1")
    assert head_file.name == FAST_HEAD_FILE and read_head(head_file).encoder == ENCODER
    web = predict_proba(model, vectors)
    worker = FastScorer(head_file).score(TEXTS)  # what classify and the Ray rescoring use
    assert worker.shape == (len(TEXTS), 4)
    np.testing.assert_allclose(worker, web, atol=1e-5)
    if len(labels) == 2:  # a two-label head leaves the other labels at 0 on both sides
        assert np.all(worker[:, [1, 2]] == 0)
