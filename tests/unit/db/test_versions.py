"""What a model version learns from: consensus labels, adjudications, and posts excluded after a flag."""

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.access import OPERATOR
from annotator.adjudication import adjudicate
from annotator.annotate import Answer, record_answer
from annotator.flags import review_flag
from annotator.ingest import import_file
from annotator.users import add_user
from db.models import FlagDecision, Item, Role, Split
from db.versions import consensus_posts, pool_posts
from testing.factories import make_project, posts, write_csv


def test_consensus_posts_follow_labels_adjudications_and_flag_reviews(
    session: Session, tmp_path: Path
) -> None:
    project = make_project(session)
    import_file(session, project, write_csv(tmp_path / "p.csv", posts(5)), by=OPERATOR)
    items = list(session.scalars(select(Item).order_by(Item.id)))
    amira, ravi = add_user(session, "amira", by=OPERATOR), add_user(session, "ravi", by=OPERATOR)
    rita = add_user(session, "rita", role=Role.RESEARCHER, by=OPERATOR)
    record_answer(session, project, amira, items[0].id, Answer.of_label("pro"))  # single label
    record_answer(session, project, amira, items[1].id, Answer.of_label("pro"))  # a tie: left out
    record_answer(session, project, ravi, items[1].id, Answer.of_label("anti"))
    record_answer(
        session, project, amira, items[2].id, Answer.of_label("anti")
    )  # tie settled by adjudication
    record_answer(session, project, ravi, items[2].id, Answer.of_label("neutral"))
    adjudicate(session, project, rita, items[2].id, "neutral")
    record_answer(session, project, amira, items[3].id, Answer.of_label("pro"))  # labelled, then excluded
    record_answer(session, project, ravi, items[3].id, Answer.flag("offensive"))
    review_flag(session, project, rita, items[3].id, FlagDecision.EXCLUDED)
    record_answer(session, project, amira, items[4].id, Answer.flag("which stance?"))  # relabelled, no labels
    review_flag(session, project, rita, items[4].id, FlagDecision.RELABELLED, label="unrelated")
    found = [(post.item_id, post.label) for post in consensus_posts(session, project.id, Split.POOL)]
    assert found == [(items[0].id, "pro"), (items[2].id, "neutral"), (items[4].id, "unrelated")]
    assert consensus_posts(session, project.id, Split.EVAL) == []
    assert pool_posts(session, project.id) == [(item.id, item.text) for item in items]
