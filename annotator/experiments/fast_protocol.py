"""The "others" protocol (core.crossval) with the fast model: multilingual-e5-small embeddings (cached) and the
logistic-regression head, trained per fold exactly as a fast retrain trains it."""

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from annotator.retraining.fastmodel import embed_texts, predict_proba, train_head
from core.crossval import Fold, run_folds
from core.labels import LABELS
from core.progress import Log


def run_fast_protocol(
    folds: list[Fold], cache_dir: Path, language_power: float, log: Log, resamples: int = 1000
) -> dict[str, Any]:
    """Train one head per fold, predict the fold's posts, and score the pooled predictions."""
    texts = sorted({p.text for fold in folds for p in fold.train + fold.evaluate})
    log(f"embedding {len(texts):,} posts (cached after the first time)")
    vectors = dict(zip(texts, embed_texts(texts, cache_dir), strict=True))

    def predict(fold: Fold) -> NDArray[np.float32]:
        head = train_head(
            np.stack([vectors[p.text] for p in fold.train]),
            [LABELS.index(p.label) for p in fold.train],
            languages=[p.language for p in fold.train],
            language_power=language_power,
        )
        probabilities = predict_proba(head, np.stack([vectors[p.text] for p in fold.evaluate]))
        log(
            f"  fold {fold.index + 1}/{len(folds)}: trained on {len(fold.train):,}, evaluated {len(fold.evaluate)}"
        )
        return probabilities

    return run_folds(folds, predict, resamples) | {"backend": "fast"}
