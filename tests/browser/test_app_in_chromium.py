"""The real app in a real browser: `lingualoop demo` serving Streamlit and the workers, chromium driven by
playwright. An annotator labels with the keyboard and undoes; a researcher presses Retrain and watches the
progress bar reach done, then reads the findings; Arabic renders right to left and Hindi in Devanagari."""

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from db.engine import make_engine, make_session_factory
from db.models import (
    Annotation,
    AnnotationEvent,
    AnnotationKind,
    EventAction,
    ModelStatus,
    ModelVersion,
    User,
)
from testing.browser import (
    HOSTILE_POST,
    PASSWORD,
    answers_of,
    post_text,
    press_and_wait_for_next_post,
    record_keys,
    recorded_keys,
    running_server,
    sign_in,
    wait_until_idle,
)
from testing.tiny_models import build_tiny_llama

pytestmark = pytest.mark.browser

KEY_ANSWERS = {"1": "pro", "2": "anti", "3": "neutral", "4": "unrelated", "s": "skip"}


def test_annotator_labels_three_posts_with_the_keyboard_and_undoes_one(page: Any, tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        sign_in(page, server.url, "amira")
        shown = [post_text(page)]
        for key in ("1", "2", "3"):
            press_and_wait_for_next_post(page, key)
            shown.append(post_text(page))
        press_and_wait_for_next_post(page, "u")
        assert post_text(page) == shown[2]  # the third post is back
        answers = answers_of(server.database_url, "amira")
    assert [(a.text, a.kind, a.label) for a in answers] == [
        (shown[0], AnnotationKind.LABEL, "pro"),
        (shown[1], AnnotationKind.LABEL, "anti"),
    ]
    assert all(a.seconds is not None and a.seconds > 0 for a in answers)


@pytest.mark.parametrize("interval_ms", [50, 250])
def test_key_bursts_label_only_posts_that_were_on_screen(page: Any, tmp_path: Path, interval_ms: int) -> None:
    """Bursts of five presses, faster than the page can draw the next post: every recorded answer belongs to the
    post that was on screen when its key was pressed, and no answer was silently replaced."""
    with running_server(tmp_path) as server:
        sign_in(page, server.url, "amira")
        page.locator(".lingualoop-post").first.wait_for()
        record_keys(page)
        for burst in ("12341", "43214", "2s3s1"):
            for key in burst:
                page.keyboard.press(key)
                page.wait_for_timeout(interval_ms)
            wait_until_idle(page)
        pressed = recorded_keys(page)
        engine = make_engine(server.database_url)
        with make_session_factory(engine)() as session:
            amira = session.scalar(select(User.id).where(User.username == "amira"))
            answers = session.execute(
                select(Annotation.item_id, Annotation.kind, Annotation.label).where(
                    Annotation.user_id == amira
                )
            ).all()
            actions = list(
                session.scalars(select(AnnotationEvent.action).where(AnnotationEvent.user_id == amira))
            )
        engine.dispose()
    assert len(pressed) == 15 and all(item is not None for _, item in pressed)
    on_screen = {(item, KEY_ANSWERS[key]) for key, item in pressed}
    assert answers, "the first press of each burst is recorded"
    for item_id, kind, label in answers:
        assert (item_id, label if kind == AnnotationKind.LABEL else str(kind)) in on_screen
    assert set(actions) == {EventAction.CREATE}  # no update: nothing overwritten
    assert len(actions) == len(answers)
    if interval_ms == 250:
        assert len(answers) >= 9, answers  # a press every 250 ms is answered far more often than not


def test_flag_by_keyboard_then_escape_then_the_researcher_reviews_it(page: Any, tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        sign_in(page, server.url, "amira")
        page.locator(".lingualoop-post").first.wait_for()
        flagged_text = post_text(page)
        page.keyboard.press("f")
        reason = page.locator(".ll-flag-reason")
        reason.wait_for()
        assert page.evaluate("document.activeElement.classList.contains('ll-flag-reason')")
        page.keyboard.type("spam 1234")  # S and 1-4 go into the box, not to the shortcuts
        page.keyboard.press("Enter")
        page.wait_for_function(
            "previous => document.querySelector('.lingualoop-post').innerText !== previous", arg=flagged_text
        )
        wait_until_idle(page)
        second = post_text(page)
        page.keyboard.press("f")
        reason.wait_for()
        page.keyboard.type("never mind")
        page.keyboard.press("Escape")
        assert reason.is_hidden()
        page.wait_for_timeout(300)
        assert post_text(page) == second  # nothing was answered
        press_and_wait_for_next_post(page, "3")  # the keys work again once the box is closed

        answers = answers_of(server.database_url, "amira")
        assert [(a.text, a.kind, a.label, a.flag_reason) for a in answers] == [
            (flagged_text, AnnotationKind.FLAG, None, "spam 1234"),
            (second, AnnotationKind.LABEL, "neutral", None),
        ]

        page.get_by_role("button", name="Sign out").click()
        # Signed out (the cookie gone) before the next sign-in: else the old session can still be on screen.
        page.get_by_role("button", name="Sign in").wait_for()
        sign_in(page, server.url, "admin")
        page.get_by_role("link", name="Flagged posts").click()
        page.get_by_text("1 flagged post(s) waiting for review").wait_for()
        page.get_by_text("spam 1234").wait_for()
        page.get_by_role("button", name="Exclude").click()
        page.get_by_text("0 flagged post(s) waiting for review, 1 reviewed").wait_for()


def test_researcher_presses_retrain_and_the_progress_bar_reaches_done(
    page: Any, tmp_path: Path, screenshot_dir: Path
) -> None:
    tiny = build_tiny_llama(tmp_path / "tiny")
    env = {"LINGUALOOP_BASE_MODEL": str(tiny), "LINGUALOOP_EPOCHS": "1"}
    with running_server(tmp_path, env) as server:
        sign_in(page, server.url, "admin")
        page.get_by_role("link", name="Retrain").click()
        page.get_by_role("button", name="Retrain", exact=True).click()
        bar = page.get_by_test_id("stProgress").first
        seen: list[str] = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            text = bar.inner_text()
            if not seen or seen[-1] != text:
                seen.append(text)
            if "done" in text or "failed" in text:
                break
            time.sleep(0.5)
        assert "Job 1 · retrain · done · model version 1 ready" in seen[-1], seen
        assert any("running" in text for text in seen), seen  # it was watched while it ran
        engine = make_engine(server.database_url)
        with make_session_factory(engine)() as session:
            version = session.scalars(select(ModelVersion)).one()
            assert version.status == ModelStatus.READY and version.is_current
        engine.dispose()
        page.get_by_role("button", name="Quick model").click()  # the fast model, in seconds
        # Then the ensemble of the newest LoRA and fast versions (db/ensemble.py), the newest version: current.
        page.get_by_text("ensemble version 3 ready (current)").first.wait_for(timeout=180_000)
        page.get_by_role("link", name="Models").click()
        page.get_by_text("Per language (95% bootstrap interval)").wait_for()
        page.wait_for_timeout(1500)  # the charts draw after the text
        page.screenshot(path=str(screenshot_dir / "models-page.png"), full_page=True)
        page.get_by_text("Version 3 is current").wait_for()
        page.get_by_role("button", name="Pin version 3").click()
        page.get_by_text("version 3 is pinned by a researcher").wait_for()
        page.get_by_role("button", name="Unpin version 3").scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        page.screenshot(path=str(screenshot_dir / "models-pin.png"))
        # Findings: the current (ensemble) version kept its eval posts' predictions, so its counts can be corrected.
        page.get_by_role("link", name="Findings").click()
        page.get_by_text("Too few eval posts (under 100)").wait_for(timeout=120_000)
        page.get_by_role("heading", name="Table").wait_for()
        assert page.locator(
            "[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg"
        ).count()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(screenshot_dir / "findings-page.png"), full_page=True)
        # Import: a file without ids, with a bad row and a row imported already.
        upload = tmp_path / "more.csv"
        upload.write_text(
            "text,lang\n"
            "Tip for designers: a 1px border in a slightly darker shade looks cleaner than pure black.,en\n"
            ",en\n"
            "A brand new post about asylum rules,en\n",
            encoding="utf-8",
        )
        page.get_by_role("link", name="Import").click()
        page.locator("input[type=file]").set_input_files(str(upload))
        page.get_by_role("button", name="Import", exact=True).click()
        page.get_by_text("1 row(s) failed validation; nothing was imported.").wait_for()
        assert "--skip-invalid" not in page.content()  # a web page names its own checkbox, not a CLI flag
        page.get_by_text("the post is empty").first.wait_for(
            state="attached"
        )  # in a table, one row per problem
        page.get_by_test_id("stCheckbox").get_by_text("Import the valid rows and list the others").click()
        page.get_by_role("button", name="Import", exact=True).click()
        page.get_by_text("1 rows were already in the project").wait_for()


@pytest.mark.parametrize(("user", "language", "direction"), [("layla", "ar", "rtl"), ("dev", "hi", "ltr")])
def test_posts_render_in_their_script_and_direction(
    page: Any, tmp_path: Path, screenshot_dir: Path, user: str, language: str, direction: str
) -> None:
    with running_server(tmp_path) as server:
        sign_in(page, server.url, user)
        post = page.locator(".lingualoop-post").first
        post.wait_for()
        assert post.get_attribute("lang") == language
        assert post.evaluate("el => getComputedStyle(el).direction") == direction
        text = post.inner_text()
        script = range(0x0600, 0x0700) if language == "ar" else range(0x0900, 0x0980)
        assert any(ord(ch) in script for ch in text), text
        page.screenshot(path=str(screenshot_dir / f"annotate-{language}.png"))


def test_html_and_markdown_in_a_post_show_as_typed(page: Any, tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        sign_in(page, server.url, "mallory-test")
        post = page.locator(".lingualoop-post").first
        post.wait_for()
        page.wait_for_timeout(500)
        assert post.inner_text() == HOSTILE_POST  # every character as typed, the blank line included
        assert page.evaluate("window.__pwned === undefined")
        assert post.locator("script, img, strong, em, a, h1").count() == 0


def test_a_reload_and_a_link_keep_you_signed_in_and_pages_say_whose_they_are(
    page: Any, tmp_path: Path
) -> None:
    with running_server(tmp_path) as server:
        page.goto(f"{server.url}/models")  # a link to a page, signed out: sign in first, then that page
        page.get_by_role("textbox", name="Username").fill("admin")
        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Models").wait_for()
        page.wait_for_function("document.cookie.includes('lingualoop_session=')")
        page.reload()  # a reload keeps the session
        page.get_by_text("Signed in as admin").wait_for()
        page.get_by_role("heading", name="Models").wait_for()
        page.goto(f"{server.url}/findings")  # and so does a link typed into the address bar
        page.get_by_role("heading", name="Findings").wait_for()
        page.get_by_role("button", name="Sign out").click()
        page.get_by_role("button", name="Sign in").wait_for()
        page.reload()  # signed out stays signed out
        page.get_by_role("button", name="Sign in").wait_for()
        assert page.get_by_text("Signed in as").count() == 0
        sign_in(page, server.url, "amira")
        page.goto(f"{server.url}/models")
        page.get_by_text("This page is for researchers and admins; you are signed in as amira").wait_for()
        assert page.get_by_text("Page not found").count() == 0
