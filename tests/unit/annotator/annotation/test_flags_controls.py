"""The Flagged-posts Relabel decision can keep the post as a control with the decided label; other decisions
cannot, and a refused review changes nothing."""

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user
from annotator.annotation.annotate import Answer, record_answer
from annotator.annotation.flags import review_flag
from annotator.corpus.ingest import import_file
from annotator.errors import LingualoopError
from db.models import ControlPost, ControlSource, FlagDecision, FlagReview, Item, Project, Role, User
from testing.factories import make_project, posts, write_csv


@pytest.fixture
def flagged(session: Session, tmp_path: Path) -> tuple[Project, User, int]:
    project = make_project(session)
    import_file(session, project, write_csv(tmp_path / "p.csv", posts(2)), by=OPERATOR)
    annotator = add_user(session, "ana", role=Role.ANNOTATOR, by=OPERATOR)
    researcher = add_user(session, "rita", role=Role.RESEARCHER, by=OPERATOR)
    item_id = session.scalars(select(Item.id).order_by(Item.id)).first()
    assert item_id is not None
    record_answer(session, project, annotator, item_id, Answer.flag("unclear"))
    return project, researcher, item_id


def test_relabel_as_a_control(session: Session, flagged: tuple[Project, User, int]) -> None:
    project, researcher, item_id = flagged
    review_flag(session, project, researcher, item_id, FlagDecision.RELABELLED, label="anti", as_control=True)
    control = session.scalars(select(ControlPost)).one()
    assert (control.item_id, control.label, control.source, control.active, control.user_id) == (
        item_id,
        "anti",
        ControlSource.FLAG,
        True,
        researcher.id,
    )


def test_only_a_relabel_makes_a_control(session: Session, flagged: tuple[Project, User, int]) -> None:
    project, researcher, item_id = flagged
    with pytest.raises(LingualoopError, match="'relabelled' decision only"):
        review_flag(session, project, researcher, item_id, FlagDecision.RETURNED, as_control=True)
    assert session.scalars(select(ControlPost)).all() == []
    assert session.scalars(select(FlagReview)).all() == []
