"""Encoder rounds on the demo project with a tiny e5: every progress message of a three-member round counts the
same thing as its total (posts, not member-posts); a round resumes the previous version's members (a warm start)
until the labels grow by half or a researcher asks for a fresh start, and says why it trains from e5."""

import re
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from annotator.accounts.access import OPERATOR
from annotator.demo import create_demo_project
from db.engine import make_session_factory, session_scope
from db.models import Item, ModelStatus, ModelVersion, Prediction, Split, User
from db.snapshots import TrainingSnapshot
from testing.factories import add_label, unlabelled_pool_items
from testing.tiny_models import tiny_e5
from trainer import encoder, pool_scoring, publish
from trainer.config import EncoderSettings, WorkerSettings
from trainer.encoder_retrain import full_round_reason, run_encoder_retrain

COUNT = re.compile(r"([\d,]+) of ([\d,]+)")


@pytest.fixture
def sessions(sqlite_engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(sqlite_engine)


def _counts(messages: list[str], starting: str) -> list[tuple[int, int]]:
    """(done, total) of every message that starts with `starting`."""
    found = [COUNT.search(m) for m in messages if m.startswith(starting)]
    return [(int(m[1].replace(",", "")), int(m[2].replace(",", ""))) for m in found if m]


def test_a_three_member_rounds_progress_never_counts_past_its_total(
    sessions: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(encoder, "packaged_e5", lambda: tiny_e5())  # the real e5 takes minutes on a CPU
    for module in (publish, pool_scoring):  # every batch's message, not one a second
        monkeypatch.setattr(module, "throttled", lambda report, seconds=1.0: report)
    with session_scope(sessions) as session:
        project_id = create_demo_project(session, by=OPERATOR).project.id
    settings = WorkerSettings(
        data_dir=tmp_path / "data",
        encoder=EncoderSettings(epochs=1, min_steps=2, batch_size=16, max_tokens=16, members=3),
        pool_page=100,  # several pages, so the count also advances across pages
    )
    messages: list[str] = []
    version_id = run_encoder_retrain(sessions, settings, project_id, lambda _f, m: messages.append(m))
    with sessions() as session:
        version = session.get(ModelVersion, version_id)
        assert version is not None and version.status == ModelStatus.READY
        pool = session.scalar(select(func.count()).select_from(Item).where(Item.split == Split.POOL))
    evaluated, scored = _counts(messages, "evaluated"), _counts(messages, "scored")
    assert {total for _, total in evaluated} == {70}  # the demo's eval posts, not 3 x 70
    assert {total for _, total in scored} == {pool}
    assert evaluated[-1] == (70, 70) and scored[-1] == (pool, pool)
    for counts in (evaluated, scored):
        assert all(done <= total for done, total in counts), counts
        assert [done for done, _ in counts] == sorted(done for done, _ in counts)
    assert len(scored) > 3 * 3  # batches of three members over three pages were all reported
    training = [m for m in messages if m.startswith("training member")]
    assert training[0].startswith("training member 1/3: step 1/") and training[-1].startswith(
        "training member 3/3"
    )
    # the time left, from the pace of the steps so far (all three members' steps to go)
    assert all(re.search(r", about [0-9]+ s left$", m) for m in training[:-1]), training


def _label_more(sessions: sessionmaker[Session], count: int) -> None:
    with session_scope(sessions) as session:
        user = session.scalar(select(User).where(User.username == "amira"))
        assert user is not None
        for item_id in unlabelled_pool_items(session, count):
            add_label(session, item_id, user.id)


def _snapshot(sessions: sessionmaker[Session], version_id: int) -> TrainingSnapshot:
    with sessions() as session:
        version = session.get(ModelVersion, version_id)
        assert version is not None and version.status == ModelStatus.READY
        return TrainingSnapshot.of(version.training_snapshot)


def test_a_round_resumes_the_members_until_the_labels_grow_or_a_researcher_asks_for_a_fresh_start(
    sessions: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(encoder, "packaged_e5", lambda: tiny_e5())
    with session_scope(sessions) as session:
        project_id = create_demo_project(session, by=OPERATOR).project.id
    settings = WorkerSettings(
        data_dir=tmp_path / "data",
        encoder=EncoderSettings(
            epochs=1, min_steps=2, batch_size=8, max_tokens=16, members=2, warm_min_steps=3, warm_epochs=1
        ),
    )
    messages: list[str] = []
    first = run_encoder_retrain(sessions, settings, project_id, lambda _f, m: messages.append(m))
    snapshot = _snapshot(sessions, first)
    assert snapshot.warm_from is None and snapshot.full_at == snapshot.trained_on == 42
    assert "training from e5 on 42 labels (no earlier encoder version to resume)" in messages[0]
    _label_more(sessions, 4)  # 46 labels: under 42 x 1.5
    messages.clear()
    second = run_encoder_retrain(sessions, settings, project_id, lambda _f, m: messages.append(m))
    snapshot = _snapshot(sessions, second)
    assert snapshot.warm_from == first and snapshot.full_at == 42  # the last round from e5 is still the first
    assert (snapshot.new, snapshot.replayed, snapshot.trained_on) == (4, 8, 12)  # replay_ratio 2
    assert f"resuming encoder version {first}: 4 new labels and 8 replayed" in messages[0]
    with sessions() as session:
        version = session.get(ModelVersion, second)
        assert version is not None and version.metrics["training"]["warm"] is True
        assert version.metrics["training"]["steps"] == 2 * 3  # two members, warm_min_steps each
        pool = session.scalar(select(func.count()).select_from(Item).where(Item.split == Split.POOL))
        scored = session.scalar(
            select(func.count()).select_from(Prediction).where(Prediction.model_version_id == second)
        )
        assert scored == pool + 70  # it scored the pool (and the eval posts)
        assert snapshot.label_count == 46  # it knows every label: the parent's and the new ones
    _label_more(sessions, 20)  # 66 labels: 42 x 1.5 reached
    third = run_encoder_retrain(sessions, settings, project_id, lambda _f, m: messages.append(m))
    assert _snapshot(sessions, third).warm_from is None and _snapshot(sessions, third).full_at == 66
    _label_more(sessions, 1)
    fourth = run_encoder_retrain(
        sessions, settings, project_id, lambda _f, m: messages.append(m), from_scratch=True
    )
    assert _snapshot(sessions, fourth).warm_from is None
    assert "(asked to retrain from scratch)" in " ".join(messages)


def test_why_a_round_trains_from_e5() -> None:
    settings = EncoderSettings()
    shape = {
        "encoder": {name: getattr(settings, name) for name in ("frozen_layers", "max_tokens", "members")}
    }
    parent = TrainingSnapshot.of(shape | {"labels": {"1": "pro", "2": "anti"}, "full_at": 2})
    now = {"1": "pro", "2": "anti", "3": "neutral"}  # 1.5 x 2 = 3: a full round
    assert full_round_reason(parent, True, {"1": "pro", "2": "neutral"}, settings, False) is None
    assert "grew from 2 to 3" in str(full_round_reason(parent, True, now, settings, False))
    assert (
        full_round_reason(parent, True, {"1": "pro"}, settings, False)
        == (
            "labels it learnt were withdrawn since"  # an excluded annotator's label: a warm round cannot unlearn it
        )
    )
    assert "files are not on this worker" in str(
        full_round_reason(parent, False, {"1": "pro"}, settings, False)
    )
    assert full_round_reason(None, False, now, settings, False) == "no earlier encoder version to resume"
    changed = TrainingSnapshot.of(parent.raw | {"encoder": shape["encoder"] | {"frozen_layers": 0}})
    assert "settings changed" in str(
        full_round_reason(changed, True, {"1": "pro", "2": "anti"}, settings, False)
    )
    off = EncoderSettings(warm_start=False)
    assert "warm starts are off" in str(
        full_round_reason(parent, True, {"1": "anti", "2": "anti"}, off, False)
    )
    assert (
        full_round_reason(parent, True, {"1": "anti", "2": "anti"}, settings, True)
        == "asked to retrain from scratch"
    )
