"""Qualification rounds: a new annotator of a language answers controls only until they pass; a failed round
shows the mistakes and blocks the language until they try again with other controls or a researcher admits them."""

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user
from annotator.annotation.annotate import Answer, record_answer, undo_last
from annotator.annotation.serving import next_item
from annotator.corpus.ingest import import_file
from annotator.errors import LingualoopError, NotFoundError, PermissionDeniedError
from annotator.quality.controls import mark_control
from annotator.quality.qualification import (
    admit,
    serving_languages,
    standing,
    standings,
    try_again,
)
from annotator.quality.settings import update_quality
from core.quality import QualitySettings
from db.models import Item, Project, Qualification, Role, User
from testing.factories import make_project, posts, write_csv

ROUND = QualitySettings(
    qualification=True, qualification_controls=4, qualification_threshold=0.75, controls_in_stream=False
)


def _project(session: Session, tmp_path: Path, hu_controls: int = 10) -> tuple[Project, dict[int, str]]:
    """A project with 10 English and 20 Hungarian posts; the first `hu_controls` Hungarian posts are controls
    (gold labels cycling pro, anti). Returns the project and the controls' gold labels."""
    project = make_project(session, languages=["en", "hu"])
    import_file(
        session,
        project,
        write_csv(tmp_path / "p.csv", posts(10, "en", "e") + posts(20, "hu", "h")),
        by=OPERATOR,
    )
    hu = session.scalars(
        select(Item.id).where(Item.project_id == project.id, Item.language == "hu").order_by(Item.id)
    ).all()
    gold = {item_id: ("pro", "anti")[i % 2] for i, item_id in enumerate(hu[:hu_controls])}
    for item_id, label in gold.items():
        mark_control(session, project, OPERATOR, item_id, label)
    update_quality(session, project, OPERATOR, ROUND)
    return project, gold


def _answer_served(
    session: Session, project: Project, user: User, gold: dict[int, str], *, right: bool
) -> int:
    """Serve the next post and answer it (right or wrong when it is a control); returns its id."""
    item = next_item(session, project, user)
    assert item is not None
    label = gold.get(item.id, "neutral")
    if not right:
        label = "unrelated"
    record_answer(session, project, user, item.id, Answer.of_label(label), queue_fast_retrain=False)
    return item.id


def test_without_qualification_nothing_is_required(session: Session, tmp_path: Path) -> None:
    project, _ = _project(session, tmp_path)
    update_quality(session, project, OPERATOR, QualitySettings(controls_in_stream=False))
    user = add_user(session, "zsofi", languages=["hu"], by=OPERATOR)
    assert serving_languages(session, project, user) is None
    [found] = standings(session, project, user)
    assert (found.language, found.state, found.may_label) == ("hu", "not required", True)
    item = next_item(session, project, user)
    assert item is not None and item.language == "hu"


def test_a_round_serves_controls_only_then_passing_opens_the_corpus(session: Session, tmp_path: Path) -> None:
    project, gold = _project(session, tmp_path)
    user = add_user(session, "zsofi", languages=["hu"], by=OPERATOR)
    assert serving_languages(session, project, user) == []
    served = [_answer_served(session, project, user, gold, right=True) for _ in range(2)]
    [found] = standings(session, project, user)
    assert found.state == "qualifying" and found.message() == "Qualification in Hungarian: 2 of 4 answered."
    served.append(_answer_served(session, project, user, gold, right=False))
    served.append(_answer_served(session, project, user, gold, right=True))
    assert set(served) <= set(gold) and len(set(served)) == 4  # controls only, each once
    [found] = standings(session, project, user)
    assert (found.state, found.correct, found.answered) == ("passed", 3, 4)
    assert found.message() == "You passed the Hungarian qualification (3 of 4 right)."
    assert serving_languages(session, project, user) == ["hu"]
    assert session.scalars(select(Qualification)).one().passed_at is None  # reading records nothing
    corpus = next_item(session, project, user)  # serving records the pass
    assert corpus is not None and corpus.id not in gold and corpus.language == "hu"
    record = session.scalars(select(Qualification)).one()
    passed_at = record.passed_at
    assert passed_at is not None
    # A pass is kept when the settings get stricter later.
    update_quality(
        session,
        project,
        OPERATOR,
        QualitySettings(qualification=True, qualification_controls=4, qualification_threshold=1.0),
    )
    assert standing(session, project, user, "hu").may_label
    assert session.scalars(select(Qualification)).one().passed_at == passed_at


def test_failing_shows_the_mistakes_and_try_again_uses_other_controls(
    session: Session, tmp_path: Path
) -> None:
    project, gold = _project(session, tmp_path)
    user = add_user(session, "zsofi", languages=["hu"], by=OPERATOR)
    first_round = [_answer_served(session, project, user, gold, right=i < 2) for i in range(4)]
    [found] = standings(session, project, user)
    assert (found.state, found.correct, found.right_needed, found.controls_left) == ("failed", 2, 3, 6)
    assert found.message() == (
        "Hungarian qualification: 2 of 4 right; 3 needed. Review your mistakes below, then try again with new posts."
    )
    assert [(m.item_id, m.given, m.gold) for m in found.mistakes] == [
        (item_id, "unrelated", gold[item_id]) for item_id in first_round[2:]
    ]
    assert found.mistakes[0].text.startswith("Post number")
    assert next_item(session, project, user) is None  # failed: nothing until they try again
    again = try_again(session, project, user, "hu")
    assert (again.state, again.attempt, again.answered, again.mistakes) == ("qualifying", 2, 0, ())
    second_round = [_answer_served(session, project, user, gold, right=True) for _ in range(4)]
    assert set(second_round) <= set(gold) and not set(second_round) & set(first_round)
    assert standing(session, project, user, "hu").state == "passed"


def test_try_again_only_after_a_failed_round(session: Session, tmp_path: Path) -> None:
    project, gold = _project(session, tmp_path)
    user = add_user(session, "zsofi", languages=["hu"], by=OPERATOR)
    with pytest.raises(LingualoopError, match="no failed Hungarian qualification round"):
        try_again(session, project, user, "hu")
    _answer_served(session, project, user, gold, right=True)
    with pytest.raises(LingualoopError, match="no failed Hungarian qualification round"):
        try_again(session, project, user, "hu")
    assert session.scalars(select(Qualification)).one().attempt == 1


def test_running_out_of_controls_says_a_researcher_can_admit(session: Session, tmp_path: Path) -> None:
    project, gold = _project(session, tmp_path, hu_controls=6)
    user = add_user(session, "zsofi", languages=["hu"], by=OPERATOR)
    for _ in range(4):
        _answer_served(session, project, user, gold, right=False)
    try_again(session, project, user, "hu")
    for _ in range(2):
        _answer_served(session, project, user, gold, right=True)
    found = standing(session, project, user, "hu")
    assert (found.state, found.answered, found.controls_left, found.may_label) == ("no controls", 2, 0, False)
    assert "A researcher can admit you by hand." in found.message()
    assert next_item(session, project, user) is None
    researcher = add_user(session, "rita", role=Role.RESEARCHER, by=OPERATOR)
    admit(session, project, researcher, "zsofi", "hu")
    found = standing(session, project, user, "hu")
    assert (
        found.state == "admitted" and found.message() == "A researcher admitted you to label Hungarian posts."
    )
    item = next_item(session, project, user)
    assert item is not None and item.id not in gold


def test_a_failed_round_with_no_controls_left_cannot_start_again(session: Session, tmp_path: Path) -> None:
    project, gold = _project(session, tmp_path, hu_controls=4)
    user = add_user(session, "zsofi", languages=["hu"], by=OPERATOR)
    for _ in range(4):
        _answer_served(session, project, user, gold, right=False)
    found = standing(session, project, user, "hu")
    assert found.state == "failed" and "a researcher can admit you" in found.message()
    with pytest.raises(LingualoopError, match="a researcher can admit you"):
        try_again(session, project, user, "hu")
    assert session.scalars(select(Qualification)).one().attempt == 1


def test_a_language_without_controls_waits_for_admission(session: Session, tmp_path: Path) -> None:
    project, _ = _project(session, tmp_path)
    user = add_user(session, "emma", languages=["en"], by=OPERATOR)
    assert standing(session, project, user, "en").state == "no controls"
    assert next_item(session, project, user) is None
    admit(session, project, OPERATOR, "emma", "en")
    assert standing(session, project, user, "en").state == "admitted"  # the operator's admission too
    item = next_item(session, project, user)
    assert item is not None and item.language == "en"


def test_corpus_posts_only_in_the_languages_passed(session: Session, tmp_path: Path) -> None:
    project, gold = _project(session, tmp_path)
    user = add_user(session, "bilingual", languages=["en", "hu"], by=OPERATOR)
    admit(session, project, OPERATOR, "bilingual", "en")
    assert serving_languages(session, project, user) == ["en"]
    # Hungarian is still qualifying: its round comes first ...
    round_posts = [_answer_served(session, project, user, gold, right=False) for _ in range(4)]
    assert set(round_posts) <= set(gold)
    assert standing(session, project, user, "hu").state == "failed"
    # ... then, failed in Hungarian, English corpus posts only.
    for _ in range(5):
        item_id = _answer_served(session, project, user, gold, right=True)
        item = session.get(Item, item_id)
        assert item is not None and item.language == "en"


def test_admit_bad_input_changes_nothing(session: Session, tmp_path: Path) -> None:
    project, _ = _project(session, tmp_path)
    annotator = add_user(session, "amira", languages=["hu"], by=OPERATOR)
    with pytest.raises(NotFoundError, match="No user named 'nobody'"):
        admit(session, project, OPERATOR, "nobody", "hu")
    with pytest.raises(
        LingualoopError, match="has no language 'tr' \\(its languages: en, hu\\): nobody was admitted"
    ):
        admit(session, project, OPERATOR, "amira", "tr")
    with pytest.raises(PermissionDeniedError, match="admit annotators"):
        admit(session, project, annotator, "amira", "hu")
    assert session.scalars(select(Qualification)).all() == []


def test_a_failed_rounds_answers_cannot_be_taken_back(session: Session, tmp_path: Path) -> None:
    """The failed round showed the gold labels: an undo would let the annotator answer again knowing them."""
    project, gold = _project(session, tmp_path)
    user = add_user(session, "zsofi", languages=["hu"], by=OPERATOR)
    for _ in range(4):
        _answer_served(session, project, user, gold, right=False)
    assert standing(session, project, user, "hu").state == "failed"
    with pytest.raises(LingualoopError, match="press Try again"):
        undo_last(session, project, user)
    assert standing(session, project, user, "hu").answered == 4  # nothing was taken back
    # While a round is still going, nothing has been shown, and undo works as anywhere.
    try_again(session, project, user, "hu")
    _answer_served(session, project, user, gold, right=False)
    assert undo_last(session, project, user) is not None
