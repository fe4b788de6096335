"""Answers, history, undo and progress; the fast model is asked for every few dozen labels."""

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user
from annotator.annotation.annotate import (
    Answer,
    Shown,
    StaleAnswerError,
    answer_shown,
    answers_today,
    open_posts_for,
    record_answer,
    undo_last,
)
from annotator.annotation.serving import lease_of, next_item
from annotator.corpus.ingest import import_file
from annotator.errors import LingualoopError, NotFoundError
from annotator.quality.guidelines import set_guideline
from db.models import Annotation, AnnotationEvent, EventAction, Job, JobKind
from testing.factories import make_project, posts, write_csv


@pytest.fixture
def project(session: Session, tmp_path: Path):  # type: ignore[no-untyped-def]
    project = make_project(session)
    project.sampling = {"fast_every": 3}
    import_file(session, project, write_csv(tmp_path / "p.csv", posts(10)), by=OPERATOR)
    return project


def test_answers_are_kept_with_their_history_and_undo_gives_the_post_back(session: Session, project) -> None:  # type: ignore[no-untyped-def]
    amira = add_user(session, "amira", by=OPERATOR)
    first = next_item(session, project, amira)
    assert first is not None
    record_answer(session, project, amira, first.id, Answer.of_label("pro"), seconds=4.2)
    second = next_item(session, project, amira)
    assert second is not None and second.id != first.id
    record_answer(session, project, amira, second.id, Answer.of_label("anti"))
    record_answer(session, project, amira, second.id, Answer.of_label("neutral"))  # a correction
    assert undo_last(session, project, amira).id == second.id  # type: ignore[union-attr]
    assert next_item(session, project, amira).id == second.id  # type: ignore[union-attr]
    actions = list(session.scalars(select(AnnotationEvent.action).order_by(AnnotationEvent.id)))
    assert actions == [EventAction.CREATE, EventAction.CREATE, EventAction.UPDATE, EventAction.DELETE]
    kept = session.scalars(select(Annotation).where(Annotation.user_id == amira.id)).all()
    assert [(a.item_id, a.label, a.seconds) for a in kept] == [(first.id, "pro", 4.2)]
    assert answers_today(session, project, amira) == 1
    assert open_posts_for(session, project, amira) == 9
    skipped = next_item(session, project, amira)
    assert skipped is not None
    record_answer(session, project, amira, skipped.id, Answer.skip())
    assert answers_today(session, project, amira) == 2
    assert open_posts_for(session, project, amira) == 8  # a skip leaves one post fewer for amira ...
    ravi = add_user(session, "ravi", by=OPERATOR)
    assert open_posts_for(session, project, ravi) == 9  # ... but not for the others


def test_bad_answers_are_refused(session: Session, project) -> None:  # type: ignore[no-untyped-def]
    amira = add_user(session, "amira", by=OPERATOR)
    with pytest.raises(LingualoopError, match="Unknown label"):
        Answer.of_label("maybe")
    with pytest.raises(LingualoopError, match="why"):
        Answer.flag("   ")
    with pytest.raises(NotFoundError):
        record_answer(session, project, amira, 10**6, Answer.skip())
    assert undo_last(session, project, amira) is None


def test_every_few_labels_queue_a_fast_retrain(session: Session, project) -> None:  # type: ignore[no-untyped-def]
    amira = add_user(session, "amira", by=OPERATOR)
    for label in ("pro", "anti"):
        item = next_item(session, project, amira)
        record_answer(session, project, amira, item.id, Answer.of_label(label))  # type: ignore[union-attr]
    assert session.scalar(select(func.count(Job.id))) == 0
    item = next_item(session, project, amira)
    record_answer(session, project, amira, item.id, Answer.of_label("neutral"))  # type: ignore[union-attr]
    assert session.scalars(select(Job.kind)).all() == [JobKind.FAST_RETRAIN]


def _shown(session: Session, project, user) -> Shown:  # type: ignore[no-untyped-def]
    item = next_item(session, project, user)
    assert item is not None
    return Shown(item.id, lease_of(session, item, user))


def test_an_answer_lands_only_on_the_post_that_was_shown(session: Session, project) -> None:  # type: ignore[no-untyped-def]
    amira = add_user(session, "amira", by=OPERATOR)
    first = _shown(session, project, amira)
    answer_shown(session, project, amira, first, Answer.of_label("neutral"), seconds=1.5)
    second = _shown(session, project, amira)
    assert second.item_id != first.item_id
    # A second press of the same burst names the first post again: refused, nothing overwritten.
    with pytest.raises(StaleAnswerError, match="answered that post already"):
        answer_shown(session, project, amira, first, Answer.of_label("pro"))
    # An answer naming another user's lease, or a lease of another post, is refused too.
    ravi = add_user(session, "ravi", by=OPERATOR)
    ravis = _shown(session, project, ravi)
    with pytest.raises(StaleAnswerError, match="not yours"):
        answer_shown(session, project, amira, ravis, Answer.of_label("anti"))
    with pytest.raises(StaleAnswerError, match="not yours"):
        answer_shown(session, project, amira, Shown(second.item_id, first.lease_id), Answer.skip())
    answers = session.execute(
        select(Annotation.item_id, Annotation.label).where(Annotation.user_id == amira.id)
    ).all()
    assert answers == [(first.item_id, "neutral")]
    actions = session.scalars(select(AnnotationEvent.action).where(AnnotationEvent.user_id == amira.id))
    assert list(actions) == [EventAction.CREATE]
    # Undo opens the post again; the shown post can then be answered anew.
    assert undo_last(session, project, amira).id == first.item_id  # type: ignore[union-attr]
    again = _shown(session, project, amira)
    assert again == first
    answer_shown(session, project, amira, again, Answer.of_label("pro"))
    assert session.scalar(select(Annotation.label).where(Annotation.user_id == amira.id)) == "pro"


def test_an_answer_stores_the_guideline_version_its_annotator_was_shown(session: Session, project) -> None:  # type: ignore[no-untyped-def]
    amira = add_user(session, "amira", by=OPERATOR)
    before = answer_shown(session, project, amira, _shown(session, project, amira), Answer.of_label("pro"))
    assert before.guideline_id is None  # no versioned guideline yet
    own = set_guideline(session, project, OPERATOR, "The project's guideline.")
    english = set_guideline(session, project, OPERATOR, "The English version.", "en")
    spanish = set_guideline(session, project, OPERATOR, "La versión española.", "es")
    on_english = answer_shown(
        session, project, amira, _shown(session, project, amira), Answer.of_label("anti")
    )
    assert on_english.guideline_id == english.id and english.id not in (own.id, spanish.id)
    event = session.scalars(
        select(AnnotationEvent)
        .where(AnnotationEvent.item_id == on_english.item_id)
        .order_by(AnnotationEvent.id)
    ).all()[-1]
    assert event.guideline_id == english.id
    corrected = record_answer(
        session, project, amira, on_english.item_id, Answer.of_label("neutral"), guideline_id=own.id
    )
    assert corrected.guideline_id == own.id
