"""Answers, history, undo and progress; the fast model is asked for every few dozen labels."""

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from annotator.annotate import Answer, answers_today, open_posts_for, record_answer, undo_last
from annotator.errors import LingualoopError, NotFoundError
from annotator.ingest import import_file
from annotator.serving import next_item
from annotator.users import add_user
from db.models import Annotation, AnnotationEvent, EventAction, Job, JobKind
from tests.factories import make_project, posts, write_csv


@pytest.fixture
def project(session: Session, tmp_path: Path):  # type: ignore[no-untyped-def]
    project = make_project(session)
    project.sampling = {"fast_every": 3}
    import_file(session, project, write_csv(tmp_path / "p.csv", posts(10)))
    return project


def test_answers_are_kept_with_their_history_and_undo_gives_the_post_back(session: Session, project) -> None:  # type: ignore[no-untyped-def]
    amira = add_user(session, "amira")
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


def test_bad_answers_are_refused(session: Session, project) -> None:  # type: ignore[no-untyped-def]
    amira = add_user(session, "amira")
    with pytest.raises(LingualoopError, match="Unknown label"):
        Answer.of_label("maybe")
    with pytest.raises(LingualoopError, match="why"):
        Answer.flag("   ")
    with pytest.raises(NotFoundError):
        record_answer(session, project, amira, 10**6, Answer.skip())
    assert undo_last(session, project, amira) is None


def test_every_few_labels_queue_a_fast_retrain(session: Session, project) -> None:  # type: ignore[no-untyped-def]
    amira = add_user(session, "amira")
    for label in ("pro", "anti"):
        item = next_item(session, project, amira)
        record_answer(session, project, amira, item.id, Answer.of_label(label))  # type: ignore[union-attr]
    assert session.scalar(select(func.count(Job.id))) == 0
    item = next_item(session, project, amira)
    record_answer(session, project, amira, item.id, Answer.of_label("neutral"))  # type: ignore[union-attr]
    assert session.scalars(select(Job.kind)).all() == [JobKind.FAST_RETRAIN]
