"""Labels a researcher can trust, in the real app and a real browser: controls come into an annotator's stream at
the set rate and look exactly like any other post; a qualification round blocks the corpus until the annotator is
admitted; excluding an annotator on the Annotators page changes the consensus of a post they labelled."""

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user
from annotator.annotation.annotate import Answer, record_answer
from annotator.quality.controls import mark_control
from annotator.quality.qualification import admit
from annotator.quality.settings import update_quality
from core.quality import QualitySettings
from db.consensus import project_consensus
from db.engine import make_engine, make_session_factory, session_scope
from db.models import Annotation, Item, Project, Role, Split, User
from db.quality import active_controls
from testing.browser import (
    PASSWORD,
    press_and_wait_for_next_post,
    running_server,
    sign_in,
    wait_until_idle,
)

pytestmark = pytest.mark.browser

PANEL_WITHOUT_THE_POST = """panel => {
  const copy = panel.cloneNode(true);
  const post = copy.querySelector('.lingualoop-post');
  post.textContent = '';
  delete post.dataset.itemId;
  delete post.dataset.leaseId;
  copy.querySelector('.ll-caption').textContent = '';
  return copy.outerHTML;
}"""
"""The answer panel's HTML less what differs from post to post by nature: its text, ids and caption (which
names the post's id)."""


@contextlib.contextmanager
def _database(url: str) -> Iterator[Session]:
    """A transaction on the running server's database (SQLite: the app sees it once committed)."""
    engine = make_engine(url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()


def _project(session: Session) -> Project:
    return session.scalars(select(Project)).one()


def _unanswered_english_posts(session: Session, n: int) -> list[int]:
    answered = select(Annotation.item_id)
    return list(
        session.scalars(
            select(Item.id)
            .where(Item.language == "en", Item.split == Split.POOL, Item.id.not_in(answered))
            .order_by(Item.id)
            .limit(n)
        )
    )


def _annotator(session: Session, name: str) -> User:
    return add_user(session, name, role=Role.ANNOTATOR, password=PASSWORD, languages=["en"], by=OPERATOR)


def _shown_item(page: Any) -> int:
    return int(page.locator(".ll-panel .lingualoop-post").first.get_attribute("data-item-id"))


def test_controls_come_at_the_set_rate_and_the_page_cannot_tell_them_apart(page: Any, tmp_path: Path) -> None:
    answers = 16
    with running_server(tmp_path) as server:
        with _database(server.database_url) as session:
            project = _project(session)
            _annotator(session, "cora")
            update_quality(
                session, project, OPERATOR, QualitySettings(control_rate_start=0.5, control_rate=0.5)
            )
            for item_id in _unanswered_english_posts(session, 15):
                mark_control(session, project, OPERATOR, item_id, "neutral")
        sign_in(page, server.url, "cora")
        page.locator(".ll-panel .lingualoop-post").first.wait_for()
        shown: list[tuple[int, str]] = []
        for _ in range(answers):
            wait_until_idle(page)
            panel = page.locator(".ll-panel").first
            shown.append((_shown_item(page), panel.evaluate(PANEL_WITHOUT_THE_POST)))
            press_and_wait_for_next_post(page, "3")
        with _database(server.database_url) as session:
            controls = set(active_controls(session, _project(session).id))
    served_controls = [html for item, html in shown if item in controls]
    served_posts = [html for item, html in shown if item not in controls]
    # At a rate of one in two, 16 answers hold 4 to 12 controls but for a 1-in-250 draw (the draw is fixed
    # per annotator and answer count, so this run is the same every time).
    assert 4 <= len(served_controls) <= 12, (len(served_controls), answers)
    assert len({item for item, _ in shown}) == answers  # no post came twice
    assert set(served_controls) == set(served_posts) and len(set(served_posts)) == 1, (
        "a control looks different"
    )


def test_qualification_blocks_the_corpus_until_a_researcher_admits(
    page: Any, tmp_path: Path, screenshot_dir: Path
) -> None:
    with running_server(tmp_path) as server:
        with _database(server.database_url) as session:
            project = _project(session)
            _annotator(session, "quinn")
            settings = QualitySettings(
                controls_in_stream=False,
                qualification=True,
                qualification_controls=3,
                qualification_threshold=1.0,
            )
            update_quality(session, project, OPERATOR, settings)
            for item_id in _unanswered_english_posts(session, 4):
                mark_control(session, project, OPERATOR, item_id, "pro")
        sign_in(page, server.url, "quinn")
        page.get_by_text("Qualification in English: 0 of 3 answered.").wait_for()
        round_items = [_shown_item(page)]
        for _ in range(2):
            press_and_wait_for_next_post(page, "2")  # wrong: the gold label is pro
            round_items.append(_shown_item(page))
        wait_until_idle(page)
        page.keyboard.press("2")
        page.get_by_text("English qualification: 0 of 3 right; 3 needed.").wait_for()
        page.get_by_text("Your mistakes (3)").wait_for()
        page.wait_for_timeout(500)
        page.screenshot(path=str(screenshot_dir / "annotate-qualification.png"), full_page=True)
        # No answer panel (the mistakes are shown as posts, read-only): a failed round serves nothing to label.
        assert page.locator(".ll-panel").count() == 0, "a failed round must not serve corpus posts"
        with _database(server.database_url) as session:
            project = _project(session)
            assert set(round_items) <= set(active_controls(session, project.id))
            admit(session, project, OPERATOR, "quinn", "en")
        page.reload()
        page.get_by_text("A researcher admitted you to label English posts.").wait_for()
        page.locator(".ll-panel .lingualoop-post").first.wait_for()
        with _database(server.database_url) as session:
            assert _shown_item(page) not in active_controls(session, _project(session).id)
        press_and_wait_for_next_post(page, "1")  # and they label the corpus


def test_excluding_an_annotator_on_the_annotators_page_changes_the_consensus(
    page: Any, tmp_path: Path, screenshot_dir: Path
) -> None:
    with running_server(tmp_path) as server:
        with _database(server.database_url) as session:
            project = _project(session)
            update_quality(session, project, OPERATOR, QualitySettings(aggregation="majority"))
            spam = _annotator(session, "spam")
            amira = session.scalars(select(User).where(User.username == "amira")).one()
            post, *controls = _unanswered_english_posts(session, 7)
            record_answer(session, project, amira, post, Answer.of_label("pro"))
            record_answer(session, project, spam, post, Answer.of_label("anti"))
            for control in controls:  # amira right on all six controls, spam on none: the controls flag spam
                mark_control(session, project, OPERATOR, control, "unrelated")
                record_answer(session, project, amira, control, Answer.of_label("unrelated"))
                record_answer(session, project, spam, control, Answer.of_label("pro"))
            assert project_consensus(session, project.id)[post].label is None  # one against one: tied
        sign_in(page, server.url, "admin")
        page.get_by_role("link", name="Annotators").click()
        page.get_by_text("Exclude or include an annotator").wait_for()
        page.get_by_text("Right on 0 of 6 control posts").first.wait_for()  # the flag, with its reason
        page.wait_for_timeout(1500)  # the charts draw after the text
        page.screenshot(path=str(screenshot_dir / "annotators-page.png"), full_page=True)
        # The exclusion form's annotator box, by its key (the confusion matrix has an "Annotator" box too).
        chooser = page.locator(".st-key-annotators_who").get_by_role("combobox")
        chooser.click()
        chooser.press_sequentially("spam")  # typing filters the options (a click alone may land mid-redraw)
        page.get_by_role("option", name="spam", exact=True).click()
        page.get_by_role("textbox", name="Note (why)").fill("random labels")
        page.get_by_role("textbox", name="Note (why)").press("Enter")
        page.get_by_role("button", name="Exclude their labels").click()
        page.get_by_text("The labels of spam are now left out of training and the consensus.").wait_for()
        with _database(server.database_url) as session:
            consensus = project_consensus(session, _project(session).id)[post]
    assert consensus.label == "pro", consensus
