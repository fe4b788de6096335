"""Excluding an annotator's labels and including them again: researchers only, clear messages for bad requests
(which change nothing), the note and the history kept, the labels never deleted."""

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user
from annotator.errors import LingualoopError, PermissionDeniedError
from annotator.quality.exclusions import (
    exclude_annotator,
    include_annotator,
    standing_exclusions,
)
from db.models import Annotation, AnnotatorExclusion, Item, LanguageSource, Role
from db.quality import excluded_users
from testing.factories import add_label, make_project


def _exclusions(session: Session) -> list[tuple[int, str, bool]]:
    return [
        (e.user_id, e.note, e.lifted_at is None)
        for e in session.scalars(select(AnnotatorExclusion).order_by(AnnotatorExclusion.id))
    ]


def test_a_researcher_excludes_and_includes_again_and_the_record_stays(session: Session) -> None:
    project = make_project(session)
    other = make_project(session, name="other")
    ravi = add_user(session, "ravi", by=OPERATOR)
    rita = add_user(session, "rita", role=Role.RESEARCHER, by=OPERATOR)
    item = Item(
        project_id=project.id,
        external_id="p1",
        text="a post",
        language="en",
        language_source=LanguageSource.GIVEN,
        text_hash="h1",
    )
    session.add(item)
    session.flush()
    add_label(session, item.id, ravi.id, "pro")

    exclusion = exclude_annotator(session, project, rita, "ravi", "  random answers on the controls ")
    assert exclusion.note == "random answers on the controls" and exclusion.excluded_by == rita.id
    assert excluded_users(session, project.id) == {ravi.id}
    assert excluded_users(session, other.id) == set()  # one project's decision
    [standing] = standing_exclusions(session, project)
    assert (standing.username, standing.note, standing.excluded_by) == (
        "ravi",
        "random answers on the controls",
        "rita",
    )

    include_annotator(session, project, rita, "ravi")
    assert excluded_users(session, project.id) == set() and standing_exclusions(session, project) == []
    assert exclusion.lifted_by == rita.id and exclusion.lifted_at is not None
    exclude_annotator(session, project, OPERATOR, "ravi", "again")  # reversible both ways
    assert _exclusions(session) == [
        (ravi.id, "random answers on the controls", False),
        (ravi.id, "again", True),
    ]
    assert standing_exclusions(session, project)[0].excluded_by == "operator"
    assert session.scalar(select(func.count()).select_from(Annotation)) == 1  # the label stays


def test_bad_requests_say_why_and_change_nothing(session: Session) -> None:
    project = make_project(session)
    add_user(session, "ravi", by=OPERATOR)
    amira = add_user(session, "amira", by=OPERATOR)
    with pytest.raises(PermissionDeniedError, match="researcher"):
        exclude_annotator(session, project, amira, "ravi", "")
    with pytest.raises(LingualoopError, match="No annotator named 'nobody'"):
        exclude_annotator(session, project, OPERATOR, "nobody", "")
    with pytest.raises(LingualoopError, match="ravi's labels are not excluded"):
        include_annotator(session, project, OPERATOR, "ravi")
    assert _exclusions(session) == []

    exclude_annotator(session, project, OPERATOR, "ravi", "first")
    with pytest.raises(LingualoopError, match="ravi's labels are already excluded from project 'study'"):
        exclude_annotator(session, project, OPERATOR, "ravi", "second")
    with pytest.raises(PermissionDeniedError):
        include_annotator(session, project, amira, "ravi")
    assert _exclusions(session) == [
        (session.scalars(select(AnnotatorExclusion.user_id)).one(), "first", True)
    ]
