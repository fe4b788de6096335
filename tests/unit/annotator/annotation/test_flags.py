"""Flagged posts: out of serving and sampling until a researcher reviews them, listed with who flagged and why,
returned, excluded or relabelled, and carried into the export and its datasheet."""

import csv
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user
from annotator.annotation.annotate import Answer, record_answer
from annotator.annotation.flags import flag_counts, list_flagged, review_flag
from annotator.annotation.serving import next_item
from annotator.corpus.export import export_project
from annotator.corpus.ingest import import_file
from annotator.errors import LingualoopError, PermissionDeniedError
from annotator.sampling.sampler import flag_blocked_items, open_counts
from db.models import Adjudication, FlagDecision, Item, Project, Role, User
from testing.factories import make_project, posts, write_csv


@pytest.fixture
def project(session: Session, tmp_path: Path) -> Project:
    project = make_project(session)
    import_file(session, project, write_csv(tmp_path / "p.csv", posts(4)), by=OPERATOR)
    return project


@pytest.fixture
def researcher(session: Session) -> User:
    return add_user(session, "rita", role=Role.RESEARCHER, by=OPERATOR)


def _flag(session: Session, project: Project, user: User, reason: str) -> Item:
    item = next_item(session, project, user)
    assert item is not None
    record_answer(session, project, user, item.id, Answer.flag(reason))
    return item


def test_a_flag_holds_the_post_back_until_reviewed_and_shows_who_and_why(
    session: Session, project: Project, researcher: User
) -> None:
    amira, ravi = add_user(session, "amira", by=OPERATOR), add_user(session, "ravi", by=OPERATOR)
    flagged = _flag(session, project, amira, "spam")
    assert set(session.scalars(flag_blocked_items())) == {flagged.id}
    assert sum(open_counts(session, project, count_queued=True).values()) == 3
    served = set()
    while (item := next_item(session, project, ravi)) is not None:
        served.add(item.id)
        record_answer(session, project, ravi, item.id, Answer.of_label("pro"))
    assert flagged.id not in served and len(served) == 3
    [post] = list_flagged(session, project, researcher)
    assert post.item_id == flagged.id and post.pending
    assert [(f.username, f.reason) for f in post.flags] == [("amira", "spam")]
    with pytest.raises(PermissionDeniedError):
        list_flagged(session, project, ravi)
    with pytest.raises(PermissionDeniedError):
        review_flag(session, project, ravi, flagged.id, FlagDecision.RETURNED)


def test_returned_posts_are_served_again_and_a_new_flag_reopens_the_review(
    session: Session, project: Project, researcher: User
) -> None:
    amira, ravi = add_user(session, "amira", by=OPERATOR), add_user(session, "ravi", by=OPERATOR)
    flagged = _flag(session, project, amira, "wrong language")
    review_flag(session, project, researcher, flagged.id, FlagDecision.RETURNED)
    assert list(session.scalars(flag_blocked_items())) == []
    assert list_flagged(session, project, researcher)[0].decision == FlagDecision.RETURNED
    served = []
    while (item := next_item(session, project, ravi)) is not None:
        served.append(item.id)
        if item.id == flagged.id:
            record_answer(session, project, ravi, item.id, Answer.flag("still spam"))
        else:
            record_answer(session, project, ravi, item.id, Answer.skip())
    assert flagged.id in served
    [post] = list_flagged(session, project, researcher)
    assert post.pending and len(post.flags) == 2  # the newer flag opened it again, both reasons kept
    assert set(session.scalars(flag_blocked_items())) == {flagged.id}


def test_excluded_and_relabelled_posts_stay_out_and_the_export_says_so(
    session: Session, project: Project, researcher: User, tmp_path: Path
) -> None:
    amira = add_user(session, "amira", by=OPERATOR)
    excluded = _flag(session, project, amira, "offensive")
    relabelled = _flag(session, project, amira, "not sure it is about immigration")
    pending = _flag(session, project, amira, "spam")
    review_flag(session, project, researcher, excluded.id, FlagDecision.EXCLUDED)
    with pytest.raises(LingualoopError, match="Choose the label"):
        review_flag(session, project, researcher, relabelled.id, FlagDecision.RELABELLED)
    review_flag(session, project, researcher, relabelled.id, FlagDecision.RELABELLED, label="unrelated")
    assert (
        session.scalar(select(Adjudication.label).where(Adjudication.item_id == relabelled.id)) == "unrelated"
    )
    assert set(session.scalars(flag_blocked_items())) == {excluded.id, relabelled.id, pending.id}
    unflagged = session.scalars(select(Item).where(Item.id.not_in([excluded.id, relabelled.id, pending.id])))
    with pytest.raises(LingualoopError, match="not flagged"):
        review_flag(session, project, researcher, next(iter(unflagged)).id, FlagDecision.EXCLUDED)
    assert flag_counts(session, project) == {"excluded": 1, "relabelled": 1, "pending": 1}

    out = tmp_path / "export.csv"
    sheet = tmp_path / "export.datasheet.md"
    export_project(session, project, out, datasheet=sheet, by=researcher)
    with out.open(encoding="utf-8") as handle:
        rows = {row["id"]: row for row in csv.DictReader(handle)}
    assert rows[excluded.external_id]["flag_decision"] == "excluded"
    assert rows[excluded.external_id]["flag_reasons"] == "amira: offensive"
    assert rows[relabelled.external_id]["label"] == "unrelated"
    assert (
        rows[pending.external_id]["flags"] == "1" and rows[pending.external_id]["flag_decision"] == "pending"
    )
    unflagged_rows = [row for row in rows.values() if row["flags"] == "0"]
    assert len(unflagged_rows) == 1 and unflagged_rows[0]["flag_decision"] == ""
    assert (
        "3 posts flagged by annotators: pending 1, returned 0, excluded 1, relabelled 1" in sheet.read_text()
    )
