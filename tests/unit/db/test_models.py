"""Constraints the rest of the system relies on, checked on SQLite and PostgreSQL."""

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import (
    Annotation,
    AnnotationKind,
    AnnotationSource,
    Item,
    Job,
    JobKind,
    JobStatus,
    LanguageSource,
    ModelVersion,
    Project,
    User,
)


def _item(session: Session, external_id: str = "x1", text_hash: str = "h1") -> Item:
    project = session.scalar(select(Project)) or Project(name="p")
    session.add(project)
    session.flush()
    item = Item(
        project_id=project.id,
        external_id=external_id,
        text="t",
        language="en",
        language_source=LanguageSource.GIVEN,
        text_hash=text_hash,
    )
    session.add(item)
    session.flush()
    return item


def _user(session: Session, name: str = "u") -> User:
    user = User(username=name)
    session.add(user)
    session.flush()
    return user


def test_one_annotation_per_post_and_user(session: Session) -> None:
    item, user = _item(session), _user(session)
    session.add(
        Annotation(
            item_id=item.id,
            user_id=user.id,
            kind=AnnotationKind.LABEL,
            label="pro",
            source=AnnotationSource.APP,
        )
    )
    session.flush()
    session.add(
        Annotation(
            item_id=item.id,
            user_id=user.id,
            kind=AnnotationKind.LABEL,
            label="anti",
            source=AnnotationSource.APP,
        )
    )
    with pytest.raises(IntegrityError):
        session.flush()


@pytest.mark.parametrize(
    ("kind", "label"),
    [(AnnotationKind.LABEL, "positive"), (AnnotationKind.LABEL, None), (AnnotationKind.SKIP, "pro")],
)
def test_label_must_match_kind(session: Session, kind: AnnotationKind, label: str | None) -> None:
    item, user = _item(session), _user(session)
    session.add(
        Annotation(item_id=item.id, user_id=user.id, kind=kind, label=label, source=AnnotationSource.APP)
    )
    with pytest.raises(IntegrityError):
        session.flush()


def test_external_ids_and_texts_are_unique_per_project(session: Session) -> None:
    _item(session, "a", "h1")
    with pytest.raises(IntegrityError):
        _item(session, "a", "h2")


def test_one_queued_job_per_dedupe_key(session: Session) -> None:
    session.add(Job(kind=JobKind.RETRAIN, dedupe_key="retrain:1"))
    session.flush()
    done = Job(kind=JobKind.RETRAIN, dedupe_key="retrain:1", status=JobStatus.DONE)
    session.add(done)
    session.flush()  # a finished job with the same key is fine
    session.add(Job(kind=JobKind.RETRAIN, dedupe_key="retrain:1"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_one_current_model_version_per_project(session: Session) -> None:
    project = Project(name="p")
    session.add(project)
    session.flush()
    session.add(ModelVersion(project_id=project.id, backend="fast", base_model="m", is_current=True))
    session.add(ModelVersion(project_id=project.id, backend="fast", base_model="m", is_current=False))
    session.flush()
    session.add(ModelVersion(project_id=project.id, backend="fast", base_model="m", is_current=True))
    with pytest.raises(IntegrityError):
        session.flush()


def test_enum_values_are_checked_in_the_database(session: Session) -> None:
    from sqlalchemy import text

    user = _user(session)
    with pytest.raises(IntegrityError):
        session.execute(text("UPDATE users SET role = 'superuser' WHERE id = :id"), {"id": user.id})
