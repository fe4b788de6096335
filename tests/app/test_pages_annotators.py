"""The Annotators page through AppTest on a real SQLite database: its empty states, the table per language with a
flagged annotator, excluding an annotator, and the label-quality settings refusing a rate out of range."""

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from streamlit.testing.v1 import AppTest

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user
from annotator.annotation.annotate import Answer, record_answer
from annotator.corpus.ingest import import_file
from annotator.quality.controls import mark_control
from annotator.quality.settings import update_quality
from core.labels import LABELS
from core.quality import QualitySettings
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import upgrade
from db.models import AnnotatorExclusion, Item, Project, Qualification, Role, User
from testing.factories import make_project, posts, write_csv

MAIN = str(Path(__file__).parents[2] / "app" / "main.py")
PAGE = str(Path(__file__).parents[2] / "app" / "app_pages" / "annotators.py")


@pytest.fixture
def sessions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sessionmaker[Session]]:
    """A project with English posts and no answer yet, and a researcher."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("LINGUALOOP_DATABASE_URL", url)
    monkeypatch.setenv("LINGUALOOP_DATA_DIR", str(tmp_path / "data"))
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        project = make_project(session, languages=("en",))
        import_file(session, project, write_csv(tmp_path / "p.csv", posts(12)), by=OPERATOR)
        add_user(session, "rosa", role=Role.RESEARCHER, by=OPERATOR)
    st.cache_resource.clear()  # the app builds its database once per server: a new one for each test
    st.cache_data.clear()
    yield factory
    st.cache_resource.clear()
    st.cache_data.clear()
    engine.dispose()


def answer(sessions: sessionmaker[Session], controls: bool) -> None:
    """'careful' answers every post right, 'spammer' always 'unrelated'; with controls, the first ten posts are
    controls."""
    with session_scope(sessions) as session:
        project = session.scalars(select(Project)).one()
        people = [add_user(session, name, by=OPERATOR) for name in ("careful", "spammer")]
        for i, item_id in enumerate(session.scalars(select(Item.id).order_by(Item.id))):
            gold = LABELS[i % 3]
            if controls and i < 10:
                mark_control(session, project, OPERATOR, item_id, gold)
            for user, label in zip(people, (gold, "unrelated"), strict=True):
                record_answer(
                    session, project, user, item_id, Answer.of_label(label), queue_fast_retrain=False
                )


def opened(sessions: sessionmaker[Session]) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=60)
    with sessions() as session:
        at.session_state["user_id"] = session.scalars(select(User.id).where(User.username == "rosa")).one()
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def test_the_empty_states_say_what_to_do(sessions: sessionmaker[Session]) -> None:
    at = opened(sessions)
    assert at.title[0].value == "Annotators"
    assert "No annotator has answered yet" in at.info[0].value and not at.dataframe
    answer(sessions, controls=False)
    at = opened(sessions)
    assert "Mark control posts to measure accuracy" in at.info[0].value
    assert set(at.dataframe[0].value["annotator"]) == {"careful", "spammer"}


def test_the_table_shows_accuracy_on_controls_and_flags_the_spammer(sessions: sessionmaker[Session]) -> None:
    answer(sessions, controls=True)
    at = opened(sessions)
    assert not at.info  # nothing missing
    table = at.dataframe[0].value.set_index("annotator")
    assert table.loc["careful", "accuracy on controls (95% interval)"].startswith("100% (")
    assert table.loc["careful", "flag"] == ""
    assert "0 of 10 control posts" in table.loc["spammer", "flag"]
    assert table.loc["careful", "answers"] == 12 and table.loc["spammer", "excluded"] == "no"
    assert any(caption.value.startswith("Model votes: none yet") for caption in at.caption)


def test_excluding_an_annotator_through_the_page(sessions: sessionmaker[Session]) -> None:
    answer(sessions, controls=True)
    at = opened(sessions)
    at.selectbox(key="annotators_who").set_value("spammer")
    at.text_input(key="annotators_note").input("random labels")
    at.button(key="annotators_exclude").click().run()
    assert not at.exception and not at.error
    assert "left out of training" in at.success[0].value
    with sessions() as session:
        standing = session.scalars(
            select(AnnotatorExclusion).where(AnnotatorExclusion.lifted_at.is_(None))
        ).one()
        spammer = session.scalars(select(User).where(User.username == "spammer")).one()
        assert (standing.user_id, standing.note) == (spammer.id, "random labels")
    table = at.dataframe[0].value.set_index("annotator")
    assert (
        table.loc["spammer", "excluded"] == "yes: random labels" and table.loc["careful", "excluded"] == "no"
    )
    at.selectbox(key="annotators_who").set_value("spammer")
    at.button(key="annotators_include").click().run()
    assert at.dataframe[0].value.set_index("annotator").loc["spammer", "excluded"] == "no"


def test_the_settings_form_refuses_a_rate_of_one_and_a_half(sessions: sessionmaker[Session]) -> None:
    at = opened(sessions)
    next(n for n in at.number_input if n.label == "Control share after that").set_value(1.5)
    at.button(key="FormSubmitter:annotators_settings-Save").click().run()
    assert "control rate must be a share between 0 and 1" in at.error[0].value
    with sessions() as session:
        assert session.scalars(select(Project)).one().quality == {}  # nothing saved
    next(n for n in at.number_input if n.label == "Control share after that").set_value(0.1)
    at.checkbox(key="annotators_qualification").check()
    at.checkbox(key="annotators_model_votes").uncheck()
    at.button(key="FormSubmitter:annotators_settings-Save").click().run()
    assert not at.error and "Saved" in at.success[0].value
    with sessions() as session:
        quality = session.scalars(select(Project)).one().quality
    assert quality["control_rate"] == 0.1 and quality["qualification"] is True
    assert quality["model_votes"] is False


def test_admitting_an_annotator_who_failed_qualification(sessions: sessionmaker[Session]) -> None:
    answer(sessions, controls=True)
    with session_scope(sessions) as session:
        project = session.scalars(select(Project)).one()
        update_quality(
            session, project, OPERATOR, QualitySettings(qualification=True, qualification_controls=5)
        )
        spammer = session.scalars(select(User).where(User.username == "spammer")).one()
        # Their round began before their answers (serving starts a round with its first control).
        session.add(
            Qualification(
                project_id=project.id, user_id=spammer.id, language="en", started_at=datetime(2000, 1, 1)
            )
        )
    at = opened(sessions)
    table = at.dataframe[0].value.set_index("annotator")
    assert table.loc["spammer", "qualification"] == "failed: 0 of 5 right (round 1)"
    # careful answered every control before any round began: no round can start, so they too wait for a researcher
    assert table.loc["careful", "qualification"].startswith("stuck: no control left")
    assert at.selectbox(key="annotators_admit_who").options == [
        "careful · English (en)",
        "spammer · English (en)",
    ]
    at.selectbox(key="annotators_admit_who").set_value(("spammer", "en"))
    at.button(key="annotators_admit").click().run()
    assert not at.error and "spammer is admitted" in at.success[0].value
    table = at.dataframe[0].value.set_index("annotator")
    assert (
        table.loc["spammer", "qualification"] == "admitted"
        and table.loc["careful", "qualification"] != "admitted"
    )
