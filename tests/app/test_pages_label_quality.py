"""The label-quality parts of the researcher and annotator pages through AppTest: marking a control while
adjudicating or relabelling a flagged post, unmarking it, and the annotate page's qualification view (a failed
round's mistakes beside the gold label and the guideline, then Try again)."""

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from annotator.accounts.access import OPERATOR
from annotator.annotation.annotate import Answer, record_answer
from annotator.quality.controls import mark_control
from annotator.quality.guidelines import set_guideline
from annotator.quality.qualification import start_round
from annotator.quality.settings import update_quality
from core.quality import QualitySettings
from db.engine import session_scope
from db.models import ControlPost, ControlSource, Item, Project, Qualification, Split, User
from tests.app.test_pages import PAGES, demo, signed_in, user_id  # noqa: F401  (demo: the fixture)

Demo = tuple[sessionmaker[Session], dict[str, str]]


def _users(session: Session, *names: str) -> list[User]:
    return [session.scalars(select(User).where(User.username == name)).one() for name in names]


def _pool_posts(session: Session, language: str, n: int) -> list[int]:
    return list(
        session.scalars(
            select(Item.id)
            .where(Item.split == Split.POOL, Item.language == language)
            .order_by(Item.id)
            .limit(n)
        )
    )


def _controls(sessions: sessionmaker[Session]) -> dict[int, tuple[str, ControlSource, bool]]:
    with sessions() as session:
        rows = session.execute(
            select(ControlPost.item_id, ControlPost.label, ControlPost.source, ControlPost.active)
        )
        return {item_id: (label, source, active) for item_id, label, source, active in rows}


def test_adjudicating_with_use_as_a_control_marks_the_post_and_unmark_undoes_it(
    demo: Demo,  # noqa: F811
) -> None:
    sessions, _ = demo
    with session_scope(sessions) as session:
        project = session.scalars(select(Project)).one()
        amira, ravi = _users(session, "amira", "ravi")
        first, second = _pool_posts(session, "en", 2)
        for item_id in (first, second):
            record_answer(session, project, amira, item_id, Answer.of_label("pro"))
            record_answer(session, project, ravi, item_id, Answer.of_label("anti"))
    at = signed_in(sessions, "admin").switch_page(str(PAGES / "adjudicate.py")).run()
    assert not at.exception, at.exception
    at.checkbox(key=f"adj_control_{first}").check().run()
    at.button(key=f"adj_{first}_neutral").click().run()
    at.button(key=f"adj_{second}_anti").click().run()  # not ticked: decided, not a control
    assert not at.exception, at.exception
    assert _controls(sessions) == {first: ("neutral", ControlSource.ADJUDICATION, True)}
    assert any("Control posts (1)" in expander.label for expander in at.expander)
    at.button(key=f"adj_unmark_{first}").click().run()
    assert _controls(sessions) == {first: ("neutral", ControlSource.ADJUDICATION, False)}
    assert any("Control posts (0)" in expander.label for expander in at.expander)


def test_relabelling_a_flagged_post_as_a_control(demo: Demo) -> None:  # noqa: F811
    sessions, _ = demo
    with session_scope(sessions) as session:
        project = session.scalars(select(Project)).one()
        [amira] = _users(session, "amira")
        [flagged] = _pool_posts(session, "en", 1)
        record_answer(session, project, amira, flagged, Answer.flag("wrong language"))
    at = signed_in(sessions, "admin").switch_page(str(PAGES / "flags.py")).run()
    at.selectbox(key=f"flags_label_{flagged}").select("unrelated").run()
    at.checkbox(key=f"flags_control_{flagged}").check().run()
    at.button(key=f"flags_relabel_{flagged}").click().run()
    assert not at.exception, at.exception
    assert _controls(sessions) == {flagged: ("unrelated", ControlSource.FLAG, True)}


def _failed_round(sessions: sessionmaker[Session]) -> tuple[list[int], str]:
    """Amira fails a two-control French round (one right, one wrong); qualification asks for 100%. Returns the
    French controls (two answered, one left for another round) and the wrongly answered post's text."""
    with session_scope(sessions) as session:
        project = session.scalars(select(Project)).one()
        [amira] = _users(session, "amira")
        settings = QualitySettings(qualification=True, qualification_controls=2, qualification_threshold=1.0)
        update_quality(session, project, OPERATOR, settings)
        set_guideline(session, project, OPERATOR, "Lisez le post en entier avant de choisir.", "fr")
        controls = _pool_posts(session, "fr", 3)
        for item_id in controls:
            mark_control(session, project, OPERATOR, item_id, "pro")
        start_round(session, project, amira, "fr")
        record_answer(session, project, amira, controls[0], Answer.of_label("pro"))
        record_answer(session, project, amira, controls[1], Answer.of_label("anti"))
        wrong = session.get(Item, controls[1])
        assert wrong is not None
        return controls, wrong.text


def test_a_failed_round_shows_the_mistakes_beside_the_gold_label_and_guideline_then_try_again(
    demo: Demo,  # noqa: F811
) -> None:
    sessions, _ = demo
    _, wrong_text = _failed_round(sessions)
    at = signed_in(sessions, "amira")
    assert not at.exception, at.exception
    markdown = " ".join(node.value for node in at.markdown)
    assert "French qualification: 1 of 2 right; 2 needed." in " ".join(w.value for w in at.warning)
    assert wrong_text.replace("<", "&lt;")[:40] in markdown
    assert "Your answer: **Anti-immigration** · the right answer: **Pro-immigration**" in markdown
    assert "Lisez le post en entier" in markdown
    assert "French guideline, version 1" in [c.value for c in at.caption]
    at.button(key="annotate_try_again_fr").click().run()
    assert not at.exception, at.exception
    with sessions() as session:
        attempt = session.scalar(
            select(Qualification.attempt).where(
                Qualification.user_id == user_id(sessions, "amira"), Qualification.language == "fr"
            )
        )
    assert attempt == 2
    assert not at.warning, "the new round has no mistakes to show"
    assert "Qualification in French: 0 of 2 answered." in [i.value for i in at.info]


def test_without_qualification_the_page_says_nothing_about_it_and_shows_the_project_guideline(
    demo: Demo,  # noqa: F811
) -> None:
    sessions, _ = demo
    at = signed_in(sessions, "amira")
    assert not at.exception, at.exception
    assert not at.info and not at.warning
    captions = [c.value for c in at.caption]
    assert "The project's guideline, version 1" in captions
