"""Benchmark: seconds from a key press in the real browser to the next post shown, over N labels, with
`lingualoop demo` serving the app and its workers and Debian's chromium driven by playwright. Prints p50/p95,
idle and (with --busy) while fast-model retrains run back to back in the demo's worker.

    python -m bench.annotate                  # 80 labels, idle
    python -m bench.annotate --busy           # 80 labels idle, then 80 while the fast model retrains
"""

import argparse
import statistics
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from annotator.accounts.access import OPERATOR
from annotator.retraining.requests import request_fast_retrain
from db.engine import make_engine, make_session_factory, session_scope
from db.models import Job, JobKind, JobStatus, Project
from testing.browser import browser_page, press_and_wait_for_next_post, running_server, sign_in


@contextmanager
def fast_retrains_back_to_back(database_url: str) -> Iterator[Callable[[], bool]]:
    """Keep one fast retrain queued while the block runs (the demo's worker runs them one after another); yields
    a function that says whether one is running at this moment."""
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    stop = threading.Event()

    def keep_busy() -> None:
        while not stop.wait(0.2):
            with session_scope(sessions) as session:
                project = session.scalars(select(Project)).one()
                request_fast_retrain(
                    session, project, by=OPERATOR
                )  # one queued per project: a no-op while one waits

    def running() -> bool:
        with sessions() as session:
            return (
                session.scalar(
                    select(Job.id)
                    .where(Job.kind == JobKind.FAST_RETRAIN, Job.status == JobStatus.RUNNING)
                    .limit(1)
                )
                is not None
            )

    thread = threading.Thread(target=keep_busy, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        stop.set()
        thread.join()
        engine.dispose()


def timed_labels(page: Any, n: int, only_when: Callable[[], bool] | None = None) -> list[float]:
    """n key-press-to-next-post timings; with only_when, only presses made while it holds are timed (the others
    are made all the same, and a second goes by between timings so that a retrain can start)."""
    timings: list[float] = []
    pressed = 0
    while len(timings) < n:
        counts = only_when is None or only_when()
        seconds = press_and_wait_for_next_post(page, "1234"[pressed % 4])
        pressed += 1
        if counts:
            timings.append(seconds)
        elif only_when is not None:
            page.wait_for_timeout(250)
    return sorted(timings)


def report(name: str, timings: list[float]) -> None:
    p95 = timings[int(0.95 * (len(timings) - 1))]
    print(
        f"{name}: label -> next post over {len(timings)} labels (real chromium, SQLite): "
        f"p50 {statistics.median(timings) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {timings[-1] * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--labels", type=int, default=80, help="Labels timed in each phase (the demo has about 190 to label)."
    )
    parser.add_argument(
        "--warmup", type=int, default=5, help="Labels before timing starts (page and caches warm)."
    )
    parser.add_argument(
        "--busy", action="store_true", help="Also time labels while fast retrains run back to back."
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="llannotate-") as folder,
        running_server(Path(folder)) as server,
        browser_page() as page,
    ):
        sign_in(page, server.url, "admin")  # the admin labels every language of the demo (about 260 posts)
        page.locator(".lingualoop-post").first.wait_for()
        timed_labels(page, args.warmup)
        report("idle", timed_labels(page, args.labels))
        if args.busy:
            with fast_retrains_back_to_back(server.database_url) as running:
                report("while a fast retrain runs", timed_labels(page, args.labels, only_when=running))


if __name__ == "__main__":
    main()
