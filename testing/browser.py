"""A real lingualoop server for browser tests and bench/annotate.py: `lingualoop demo` (Streamlit and the
workers) on a fresh SQLite database, driven by Debian's chromium through playwright (never `playwright install`)."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user
from annotator.corpus.ingest import import_file
from annotator.demo import create_demo_project
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import upgrade
from db.models import Annotation, Item, Project, Role, User

LINGUALOOP = str(Path(sys.executable).parent / "lingualoop")
CHROMIUM = os.environ.get("LINGUALOOP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
PASSWORD = "browser-test-password"
HOSTILE_POST = (
    '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">\n\n'
    "**not bold** _not italic_ [not a link](http://example.org) # not a heading"
)


def chromium_available() -> bool:
    return shutil.which(CHROMIUM) is not None or Path(CHROMIUM).exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    database_url: str
    process: subprocess.Popen[bytes]


def prepare_database(folder: Path) -> str:
    """The demo project, with known passwords and one annotator per script to screenshot."""
    url = f"sqlite:///{folder / 'browser.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with session_scope(make_session_factory(engine)) as session:
        create_demo_project(session, by=OPERATOR)
        for user in session.scalars(select(User).where(User.username.in_(["admin", "amira", "ravi"]))):
            from annotator.accounts.users import hash_password

            user.password_hash = hash_password(PASSWORD)
        add_user(session, "layla", role=Role.ANNOTATOR, password=PASSWORD, languages=["ar"], by=OPERATOR)
        add_user(session, "dev", role=Role.ANNOTATOR, password=PASSWORD, languages=["hi"], by=OPERATOR)
        # A hostile post in a language of its own, served only to "mallory-test".
        project = session.scalars(select(Project)).one()
        hostile = folder / "hostile.jsonl"
        hostile.write_text(
            json.dumps({"id": "hostile-1", "text": HOSTILE_POST, "lang": "sw"}), encoding="utf-8"
        )
        import_file(session, project, hostile, by=OPERATOR)
        add_user(
            session, "mallory-test", role=Role.ANNOTATOR, password=PASSWORD, languages=["sw"], by=OPERATOR
        )
    engine.dispose()
    return url


@contextlib.contextmanager
def running_server(folder: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    database_url = prepare_database(folder)
    port = free_port()
    process = subprocess.Popen(
        [
            LINGUALOOP,
            "--database-url",
            database_url,
            "--data-dir",
            str(folder / "data"),
            "demo",
            "--port",
            str(port),
        ],
        env=os.environ | {"OMP_NUM_THREADS": "1"} | (env or {}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the app did not start (exit code {process.poll()})")
            time.sleep(0.3)
        yield Server(url, database_url, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def browser_page(width: int = 1280, height: int = 900) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def sign_in(page: Any, url: str, username: str) -> None:
    page.goto(url)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text(f"Signed in as {username}").wait_for()
    page.wait_for_function("document.cookie.includes('lingualoop_session=')")  # a reload keeps the session


def post_text(page: Any) -> str:
    return str(page.locator(".lingualoop-post").first.inner_text())


def press_and_wait_for_next_post(page: Any, key: str) -> float:
    """Press a shortcut key and return the seconds until a different post is shown."""
    before = post_text(page)
    started = time.perf_counter()
    page.keyboard.press(key)
    page.wait_for_function(
        "previous => { const el = document.querySelector('.lingualoop-post'); "
        "return el !== null && el.innerText !== previous; }",
        arg=before,
        polling="raf",
    )
    return time.perf_counter() - started


KEY_RECORDER = """
window.__keys = [];
window.addEventListener('keydown', (event) => {
  const post = document.querySelector('.lingualoop-post');
  window.__keys.push({key: event.key, item: post ? Number(post.dataset.itemId) : null});
}, true);
"""
"""Records, for each key press, the post on screen at that moment (a capturing listener runs before the panel's)."""


def record_keys(page: Any) -> None:
    page.evaluate(KEY_RECORDER)


def recorded_keys(page: Any) -> list[tuple[str, int | None]]:
    return [(entry["key"], entry["item"]) for entry in page.evaluate("window.__keys")]


def wait_until_idle(page: Any) -> None:
    """Until the answer panel takes keys again (the server has handled the last answer)."""
    page.wait_for_function("document.querySelector('.ll-panel:not(.ll-busy)') !== null", polling="raf")


@dataclass(frozen=True)
class RecordedAnswer:
    text: str
    kind: str
    label: str | None
    flag_reason: str | None
    seconds: float | None


def answers_of(database_url: str, username: str) -> list[RecordedAnswer]:
    """A user's answers as the server's database holds them, oldest first, with the text of each post."""

    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            rows = session.execute(
                select(
                    Item.text, Annotation.kind, Annotation.label, Annotation.flag_reason, Annotation.seconds
                )
                .join(Annotation, Annotation.item_id == Item.id)
                .join(User, User.id == Annotation.user_id)
                .where(User.username == username)
                .order_by(Annotation.id)
            ).all()
    finally:
        engine.dispose()
    return [RecordedAnswer(*row) for row in rows]
