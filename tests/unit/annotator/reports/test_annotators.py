"""The Annotators report: answers, accuracy on controls with its interval (or not measured yet), the reliability
model's confusion, speed, agreement with the others' majority, exclusion, qualification and the flag."""

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user
from annotator.annotation.annotate import Answer, record_answer
from annotator.corpus.ingest import import_file
from annotator.errors import PermissionDeniedError
from annotator.quality.controls import mark_control
from annotator.quality.settings import update_quality
from annotator.reports.annotators import (
    AnnotatorRow,
    _agreement_with_others,
    annotator_report,
    confusion_cells,
    model_votes_text,
)
from core.labels import LABELS
from core.quality import QualitySettings
from core.reliability import MIN_CONTROL_ANSWERS, wilson_interval
from db.consensus import LabelAnswer, write_model_votes
from db.models import (
    AnnotatorExclusion,
    Backend,
    Item,
    ModelStatus,
    ModelVersion,
    Project,
    Qualification,
    Role,
    User,
)
from testing.factories import make_project, posts, write_csv

CONTROLS = 10
SHARED = 20


def _answer(session: Session, project: Project, user: User, item_id: int, label: str, seconds: float) -> None:
    record_answer(
        session, project, user, item_id, Answer.of_label(label), seconds=seconds, queue_fast_retrain=False
    )


@pytest.fixture
def campaign(session: Session, tmp_path: Path) -> tuple[Project, dict[str, User]]:
    """English: 10 controls (gold cycling through the labels) and 20 posts labelled by four annotators; careful,
    b and c agree everywhere and answer every control right, the spammer always says 'unrelated'. Spanish: one
    post labelled by careful alone, and 'late' answered only 2 controls."""
    project = make_project(session)
    import_file(
        session, project, write_csv(tmp_path / "p.csv", posts(CONTROLS + SHARED + 1) + posts(1, "es", "s")),
        by=OPERATOR,
    )  # fmt: skip
    people = {name: add_user(session, name, by=OPERATOR) for name in ("careful", "b", "c", "spammer", "late")}
    english = list(session.scalars(select(Item.id).where(Item.language == "en").order_by(Item.id)))
    spanish = session.scalars(select(Item.id).where(Item.language == "es")).one()
    controls, shared = english[:CONTROLS], english[CONTROLS : CONTROLS + SHARED]
    for i, item_id in enumerate(controls):
        gold = LABELS[i % 3]  # never 'unrelated': the spammer gets none right
        mark_control(session, project, OPERATOR, item_id, gold)
        for name in ("careful", "b", "c"):
            _answer(session, project, people[name], item_id, gold, 4.0)
        _answer(session, project, people["spammer"], item_id, "unrelated", 1.0)
        if i < 2:
            _answer(session, project, people["late"], item_id, gold, 9.0)
    for i, item_id in enumerate(shared):
        label = LABELS[i % 3]
        for name, seconds in (("careful", 2.0 + i), ("b", 5.0), ("c", 5.0)):
            _answer(session, project, people[name], item_id, label, seconds)
        _answer(session, project, people["spammer"], item_id, "unrelated", 1.0)
    _answer(session, project, people["careful"], spanish, "pro", 7.0)
    return project, people


def _row(rows: list[AnnotatorRow], username: str, language: str = "en") -> AnnotatorRow:
    return next(row for row in rows if (row.username, row.language) == (username, language))


def test_accuracy_on_controls_with_its_interval_and_the_spammer_flagged(
    session: Session, campaign: tuple[Project, dict[str, User]]
) -> None:
    project, _ = campaign
    report = annotator_report(session, project, OPERATOR)
    assert [(r.language, r.username) for r in report.rows] == [
        ("en", "b"), ("en", "c"), ("en", "careful"), ("en", "late"), ("en", "spammer"), ("es", "careful"),
    ]  # fmt: skip
    assert report.controls == {"en": CONTROLS} and report.languages == ["en", "es"]
    careful = _row(report.rows, "careful")
    assert (careful.answers, careful.control_answers, careful.control_correct) == (30, 10, 10)
    assert careful.control_accuracy == 1.0 and careful.control_interval == wilson_interval(10, 10)
    assert careful.control_interval[0] < 1.0  # ten answers do not prove perfection
    assert careful.flag is None and not careful.excluded and careful.qualification is None
    spammer = _row(report.rows, "spammer")
    assert spammer.control_accuracy == 0.0 and spammer.flag is not None and "0 of 10" in spammer.flag
    # Below the minimum, no number made from nothing.
    late = _row(report.rows, "late")
    assert late.control_answers == 2 < MIN_CONTROL_ANSWERS
    assert late.control_accuracy is None and late.control_interval is None and late.flag is None


def test_speed_and_agreement_with_the_others_majority(
    session: Session, campaign: tuple[Project, dict[str, User]]
) -> None:
    project, _ = campaign
    rows = annotator_report(session, project, OPERATOR).rows
    careful, spammer = _row(rows, "careful"), _row(rows, "spammer")
    # careful: ten controls at 4 s and 2..21 s on the shared posts -> the median of 30 answers
    assert careful.median_seconds == pytest.approx(6.5) and spammer.median_seconds == 1.0
    # On every control and shared post the others' majority is the careful label.
    assert (careful.agreement, careful.shared_posts) == (1.0, CONTROLS + SHARED)
    assert (spammer.agreement, spammer.shared_posts) == (0.0, CONTROLS + SHARED)
    alone = _row(rows, "careful", "es")
    assert (alone.agreement, alone.shared_posts, alone.answers) == (None, 0, 1)


def test_agreement_leaves_out_posts_where_the_others_tie() -> None:
    given = {1: {1: "pro", 2: "pro", 3: "anti"}, 2: {1: "pro", 2: "anti"}, 3: {2: "neutral", 3: "neutral"}}
    answers = [
        LabelAnswer(item, user, label, None, control=False)
        for item, labels in given.items()
        for user, label in labels.items()
    ]
    found = _agreement_with_others(answers)
    # user 1: the others tie on post 1 (pro, anti), so only post 2 counts, where user 2 said anti
    assert found[1] == (0.0, 1)
    # user 2: a tie on post 1 again; post 2 against user 1, post 3 with user 3
    assert found[2] == (0.5, 2)
    # user 3: against the others' pro on post 1, with user 2 on post 3
    assert found[3] == (0.5, 2)
    assert _agreement_with_others([LabelAnswer(1, 1, "pro", None, control=False)]) == {1: (None, 0)}


def test_the_reliability_model_estimate_per_language(
    session: Session, campaign: tuple[Project, dict[str, User]]
) -> None:
    project, _ = campaign
    rows = annotator_report(session, project, OPERATOR).rows
    careful, spammer = _row(rows, "careful"), _row(rows, "spammer")
    assert careful.confusion is not None and len(careful.confusion) == len(LABELS)
    for matrix_row in careful.confusion:
        assert len(matrix_row) == len(LABELS) and sum(matrix_row) == pytest.approx(1.0)
    assert careful.estimated_accuracy is not None and spammer.estimated_accuracy is not None
    assert careful.estimated_accuracy > 0.8 > spammer.estimated_accuracy
    cells = confusion_cells(careful)
    assert len(cells) == 16 and {c["true label"] for c in cells} == set(LABELS)
    assert next(c for c in cells if c["true label"] == c["given label"] == "pro")["share"] > 0.5


def test_excluded_annotators_and_qualification_are_shown(
    session: Session, campaign: tuple[Project, dict[str, User]]
) -> None:
    project, people = campaign
    session.add(AnnotatorExclusion(project_id=project.id, user_id=people["spammer"].id, note="random labels"))
    update_quality(session, project, OPERATOR, QualitySettings(qualification=True, qualification_controls=5))
    # The spammer's round began before their answers (serving starts a round with its first control).
    session.add(
        Qualification(
            project_id=project.id,
            user_id=people["spammer"].id,
            language="en",
            started_at=datetime(2000, 1, 1),
        )
    )
    rows = annotator_report(session, project, OPERATOR).rows
    spammer = _row(rows, "spammer")
    assert spammer.excluded and spammer.exclusion_note == "random labels"
    assert not _row(rows, "careful").excluded
    assert all(row.qualification is not None for row in rows)
    assert spammer.qualification == "failed: 0 of 5 right (round 1)"
    assert _row(rows, "late").qualification == "qualifying: 0 of 5 controls answered"
    json_row = spammer.as_json()
    assert json_row["excluded"] is True and isinstance(json_row["control_interval"], list)


def test_an_empty_project_and_researchers_only(session: Session) -> None:
    project = make_project(session)
    report = annotator_report(session, project, OPERATOR)
    assert report.rows == [] and report.controls == {} and report.settings == QualitySettings()
    annotator = add_user(session, "amy", by=OPERATOR)
    with pytest.raises(PermissionDeniedError, match="Only a researcher or admin"):
        annotator_report(session, project, annotator)
    rosa = add_user(session, "rosa", role=Role.RESEARCHER, by=OPERATOR)
    assert annotator_report(session, project, rosa).rows == []


def test_no_estimate_where_nothing_checks_the_annotator(
    session: Session, campaign: tuple[Project, dict[str, User]]
) -> None:
    """careful's one Spanish post was labelled by nobody else and no control is Spanish: the model's accuracy
    there would be its prior's number, so none is shown (and 'late', with 2 controls and 0 shared posts, neither)."""
    project, _ = campaign
    rows = annotator_report(session, project, OPERATOR).rows
    spanish = _row(rows, "careful", "es")
    assert spanish.answers == 1 and spanish.estimated_accuracy is None and spanish.confusion is None
    late = _row(rows, "late")
    assert late.control_answers == 2 and late.estimated_accuracy is None and late.confusion is None
    assert _row(rows, "careful").estimated_accuracy is not None  # 10 controls and 20 shared posts: estimated


def test_the_models_votes_are_reported_but_never_an_annotator(
    session: Session, campaign: tuple[Project, dict[str, User]]
) -> None:
    project, _ = campaign
    report = annotator_report(session, project, OPERATOR)
    assert report.voting_version is None and report.model_accuracy == {}
    assert model_votes_text(report).startswith("Model votes: none yet.")
    version = ModelVersion(
        project_id=project.id, backend=Backend.FAST, base_model="e5", status=ModelStatus.READY
    )
    session.add(version)
    session.flush()
    english = session.scalars(select(Item.id).where(Item.language == "en").order_by(Item.id)).all()
    # a model that is right on every English post (the campaign's controls, then its shared posts)
    right = [LABELS[i % 3] for i in range(CONTROLS)] + [LABELS[i % 3] for i in range(SHARED)]
    write_model_votes(session, version.id, dict(zip(english, right, strict=False)))
    report = annotator_report(session, project, OPERATOR)
    assert report.voting_version == version.id
    assert set(report.model_accuracy) == {"en"} and report.model_accuracy["en"] > 0.8
    assert {row.username for row in report.rows} == {"careful", "b", "c", "spammer", "late"}
    assert _row(report.rows, "spammer").flag is not None and _row(report.rows, "careful").flag is None
    assert f"fast version {version.id}" in model_votes_text(report) and "English" in model_votes_text(report)
    update_quality(session, project, OPERATOR, replace(QualitySettings(), model_votes=False))
    assert model_votes_text(annotator_report(session, project, OPERATOR)).startswith("Model votes: off")
