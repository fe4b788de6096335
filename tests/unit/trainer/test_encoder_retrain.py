"""A three-member encoder round on the demo project with a tiny e5: every progress message counts the same thing
as its total (posts, not member-posts), so no message shows more done than there is."""

import re
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from annotator.accounts.access import OPERATOR
from annotator.demo import create_demo_project
from db.engine import make_session_factory, session_scope
from db.models import Item, ModelStatus, ModelVersion, Split
from testing.tiny_models import tiny_e5
from trainer import encoder, pool_scoring, publish
from trainer.config import EncoderSettings, WorkerSettings
from trainer.encoder_retrain import run_encoder_retrain

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
