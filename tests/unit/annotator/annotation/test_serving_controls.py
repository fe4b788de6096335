"""Serving control posts: mixed into an annotator's stream at the set rate, leased like any post, each at most once
per annotator, only in their languages, and never taken out of the pool of controls by an answer."""

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user
from annotator.annotation.annotate import Answer, Shown, answer_shown, open_posts_for
from annotator.annotation.serving import lease_of, next_item
from annotator.corpus.ingest import import_file
from annotator.quality.controls import mark_control
from annotator.quality.settings import update_quality
from core.quality import QualitySettings, control_due
from db.models import Item, Project, QueueEntry, User
from testing.factories import make_project, posts, write_csv

EVERY_FIFTH = QualitySettings(control_rate_start=0.2, control_start_answers=0, control_rate=0.2)


def _project(session: Session, tmp_path: Path, en: int, hu: int = 10) -> Project:
    project = make_project(session, languages=["en", "hu"])
    import_file(
        session,
        project,
        write_csv(tmp_path / "p.csv", posts(en, "en", "e") + posts(hu, "hu", "h")),
        by=OPERATOR,
    )
    return project


def _mark(session: Session, project: Project, language: str, n: int) -> set[int]:
    ids = session.scalars(
        select(Item.id)
        .where(Item.project_id == project.id, Item.language == language)
        .order_by(Item.id.desc())
        .limit(n)
    ).all()
    for item_id in ids:
        mark_control(session, project, OPERATOR, item_id, "anti")
    return set(ids)


def _stream(session: Session, project: Project, user: User, answers: int) -> list[int]:
    """The posts served to the user, each answered through the app's path (lease id and all)."""
    served = []
    for _ in range(answers):
        item = next_item(session, project, user)
        if item is None:
            break
        shown = Shown(item.id, lease_of(session, item, user))
        answer_shown(session, project, user, shown, Answer.of_label("pro"))
        served.append(item.id)
    return served


def test_controls_come_at_the_set_rate_once_each_in_the_users_languages(
    session: Session, tmp_path: Path
) -> None:
    project = _project(session, tmp_path, en=230)
    update_quality(session, project, OPERATOR, EVERY_FIFTH)
    controls = _mark(session, project, "en", 70)
    hu_controls = _mark(session, project, "hu", 5)
    user = add_user(session, "emma", languages=["en"], by=OPERATOR)
    served = _stream(session, project, user, 200)
    assert len(served) == 200 and len(set(served)) == 200  # never the same post twice
    got = [i for i, item_id in enumerate(served) if item_id in controls]
    # Exactly where the draw said so (there were always controls left) ...
    assert got == [n for n in range(200) if control_due(EVERY_FIFTH, f"{project.id}:{user.id}", n)]
    # ... which is about one in five: 40 expected, binomial spread about 6.
    assert 25 <= len(got) <= 55
    assert not set(served) & hu_controls
    queued = set(session.scalars(select(QueueEntry.item_id)))
    assert not queued & (controls | hu_controls)  # controls never enter the queue


def test_default_rates_start_high_then_fall(session: Session, tmp_path: Path) -> None:
    project = _project(session, tmp_path, en=220)
    controls = _mark(session, project, "en", 40)
    user = add_user(session, "emma", languages=["en"], by=OPERATOR)
    served = _stream(session, project, user, 170)
    early = sum(item_id in controls for item_id in served[:20])
    late = sum(item_id in controls for item_id in served[20:])
    settings = QualitySettings()
    assert early == sum(control_due(settings, f"{project.id}:{user.id}", n) for n in range(20))
    assert late == sum(control_due(settings, f"{project.id}:{user.id}", n) for n in range(20, 170))
    assert early + late > 0
    assert late / 150 < 0.15  # 1 in 20 after the first 20 answers


def test_no_controls_means_corpus_posts_only(session: Session, tmp_path: Path) -> None:
    project = _project(session, tmp_path, en=40, hu=0)
    update_quality(session, project, OPERATOR, EVERY_FIFTH)
    user = add_user(session, "emma", by=OPERATOR)
    served = _stream(session, project, user, 100)
    assert len(served) == 40  # every corpus post, once, and then nothing
    assert next_item(session, project, user) is None


def test_controls_in_stream_off(session: Session, tmp_path: Path) -> None:
    project = _project(session, tmp_path, en=30, hu=0)
    update_quality(session, project, OPERATOR, QualitySettings(controls_in_stream=False))
    controls = _mark(session, project, "en", 10)
    user = add_user(session, "emma", by=OPERATOR)
    served = _stream(session, project, user, 100)
    assert len(served) == 20 and not set(served) & controls


def test_when_controls_run_out_the_corpus_goes_on(session: Session, tmp_path: Path) -> None:
    project = _project(session, tmp_path, en=60, hu=0)
    update_quality(session, project, OPERATOR, QualitySettings(control_rate_start=0.9, control_rate=0.9))
    controls = _mark(session, project, "en", 3)
    user = add_user(session, "emma", by=OPERATOR)
    served = _stream(session, project, user, 100)
    assert len(served) == 60 and set(served) >= controls


def test_an_answered_control_stays_in_every_annotators_pool(session: Session, tmp_path: Path) -> None:
    project = _project(session, tmp_path, en=10, hu=0)
    update_quality(session, project, OPERATOR, QualitySettings(control_rate_start=0.99, control_rate=0.99))
    [control] = _mark(session, project, "en", 1)
    streams = [_stream(session, project, add_user(session, f"u{i}", by=OPERATOR), 3) for i in range(4)]
    assert all(control in served for served in streams)  # answered by each, served to each
    corpus = [item_id for served in streams for item_id in served if item_id != control]
    assert len(corpus) == 8 and len(set(corpus)) == 8  # overlap 1: a corpus post goes to one annotator


def test_the_count_left_drops_by_one_after_a_control_as_after_any_post(
    session: Session, tmp_path: Path
) -> None:
    """'Left to do' counts the annotator's unanswered controls too, so it never tells a control apart."""
    project = _project(session, tmp_path, en=40)
    update_quality(session, project, OPERATOR, EVERY_FIFTH)
    controls = _mark(session, project, "en", 10)
    user = add_user(session, "emma", languages=["en"], by=OPERATOR)
    drops: dict[bool, set[int]] = {True: set(), False: set()}
    for _ in range(20):
        before = open_posts_for(session, project, user)
        served = _stream(session, project, user, 1)
        drops[served[0] in controls].add(before - open_posts_for(session, project, user))
    assert drops[True] == drops[False] == {1}
