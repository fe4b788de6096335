"""Scoring a new version's pool: in keyset pages of `pool_page` posts, so the pool is never held whole, either
in the worker itself or, with a Ray address configured, fanned out to a pool of Ray actors (one per GPU) that
each load the version once and write their pages' predictions. A page written twice replaces its own rows.
Nobody reads these predictions before the version is marked ready."""

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session, sessionmaker

from core.calibration import apply_temperature
from core.progress import CountProgress, Pace, Report
from db.engine import make_engine, make_session_factory, session_scope
from db.versions import pool_page, pool_range, pool_ranges, pool_size, replace_predictions, write_predictions
from trainer.config import WorkerSettings
from trainer.distributed import RayOptions, plain, plan_actors, ray_cluster, run_until_done, set_threads
from trainer.failpoints import failpoint
from trainer.version_scorers import VersionSpec, open_scorer

BatchReport = CountProgress
ScoreTexts = Callable[[Sequence[str], BatchReport | None], NDArray[np.float32]]
"""A loaded model of any backend as the worker scores with it: texts (and a per-batch progress callback, called
as (done, total)) to (len(texts), 4) probabilities in LABELS order."""


def throttled(report: Report, seconds: float = 1.0) -> Report:
    """Per-batch progress, written at most once a second (each report is a database write)."""
    last = -math.inf

    def throttled_report(progress: float, message: str) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= seconds:
            last = now
            report(progress, message)

    return throttled_report


def score_pool(
    sessions: sessionmaker[Session],
    settings: WorkerSettings,
    score: ScoreTexts,
    spec: VersionSpec,
    report: Report,
    start: float,
    end: float,
) -> int:
    """Score every pool post, writing predictions page by page; returns the posts scored."""
    with sessions() as session:
        total = pool_size(session, spec.project_id)

    pace = Pace()

    def moved(done: int) -> None:
        report(
            start + (end - start) * done / max(1, total),
            f"scored {done:,} of {total:,} posts{pace.left(done, total)}",
        )

    if settings.ray_address and total:
        return _on_ray(sessions, settings, spec, total, moved, lambda message: report(start, message))
    batch_report = throttled(report)
    scored, after = 0, 0

    def within(done: int, _page: int) -> None:
        batch_report(
            start + (end - start) * (scored + done) / max(1, total),
            f"scored {scored + done:,} of {total:,} posts{pace.left(scored + done, total)}",
        )

    while True:
        with sessions() as session:
            page = pool_page(session, spec.project_id, after, settings.pool_page)
        if not page:
            return scored
        probabilities = apply_temperature(
            score([text for _, text in page], within),
            spec.temperature,
        )
        with session_scope(sessions) as session:
            write_predictions(session, spec.id, [item_id for item_id, _ in page], probabilities)
        failpoint("scoring")  # predictions of a version that is not ready yet are in the database
        scored, after = scored + len(page), page[-1][0]
        moved(scored)


class PageScorer:
    """A Ray Data actor: loads the version once, then reads, scores and writes one page of the pool per call."""

    def __init__(self, spec: VersionSpec, settings: WorkerSettings, database_url: str, threads: int) -> None:
        set_threads(threads)
        self.spec = spec
        self.sessions = make_session_factory(make_engine(database_url))
        self.scorer = open_scorer(spec, settings, log=lambda _message: None)

    def __call__(self, batch: dict[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
        rows = []
        for after, last in zip(batch["after"], batch["last"], strict=True):
            with self.sessions() as session:
                page = pool_range(session, self.spec.project_id, plain(after), plain(last))
            probabilities = self.scorer.score([text for _, text in page])
            with session_scope(self.sessions) as session:
                replace_predictions(session, self.spec.id, [item_id for item_id, _ in page], probabilities)
            rows.append(len(page))
        return {"after": batch["after"], "rows": np.array(rows)}


def _on_ray(
    sessions: sessionmaker[Session],
    settings: WorkerSettings,
    spec: VersionSpec,
    total: int,
    moved: Callable[[int], None],
    say: Callable[[str], None],
) -> int:
    with sessions() as session:
        pages = [
            {"after": after, "last": last}
            for after, last in pool_ranges(session, spec.project_id, settings.pool_page)
        ]
    engine = sessions.kw["bind"]
    database_url = engine.url.render_as_string(hide_password=False)
    done: set[int] = set()
    scored = 0

    def landed(result: dict[str, Any]) -> None:
        nonlocal scored
        done.add(int(result["after"]))
        scored += int(result["rows"])
        moved(scored)

    with ray_cluster(settings.ray_address) as resources:
        plan = plan_actors(resources, RayOptions(address=settings.ray_address))
        say(f"scoring {total:,} pool posts on Ray with {plan.describe()}")
        run_until_done(
            lambda: [page for page in pages if page["after"] not in done],
            PageScorer,
            {"spec": spec, "settings": settings, "database_url": database_url},
            plan,
            landed,
            say,
        )
    return scored
