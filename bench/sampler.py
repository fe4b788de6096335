"""Benchmark: seconds to select a batch of 50 and milliseconds to serve the next post, on a pool of synthetic
posts with a ready model version's predictions, on SQLite and on a private PostgreSQL cluster. Prints figures.

    python -m bench.sampler                          # 1,000,000 posts, both databases
    python -m bench.sampler --posts 100000 --backends sqlite
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user
from annotator.annotation.serving import next_item
from annotator.corpus.ingest import import_file
from annotator.corpus.projects import create_project
from annotator.sampling.sampler import select_batch
from bench.databases import on_each_database
from bench.ingest import write_corpus
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import upgrade
from db.models import Item, ModelVersion
from db.versions import mark_ready, write_predictions
from testing.factories import add_label


def build(url: str, corpus: Path) -> None:
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    started = time.perf_counter()
    with session_scope(sessions) as session:
        project = create_project(session, "bench", by=OPERATOR)
        import_file(session, project, corpus, by=OPERATOR)
        version = ModelVersion(project_id=project.id, backend="fast", base_model="bench")
        session.add(version)
        session.flush()
        item_ids = list(session.scalars(select(Item.id).order_by(Item.id)))
        probabilities = np.random.default_rng(0).dirichlet(np.ones(4), size=len(item_ids))
        write_predictions(session, version.id, item_ids, probabilities)
        mark_ready(session, version)  # as the worker does: ready, current, statistics refreshed
        for name in ("ann1", "ann2"):
            add_user(session, name, by=OPERATOR)
    print(f"  built the pool and its predictions in {time.perf_counter() - started:.0f} s", flush=True)
    engine.dispose()


def measure(name: str, url: str, serves: int) -> None:
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    from db.models import Project, User

    with session_scope(sessions) as session:
        project = session.scalars(select(Project)).one()
        started = time.perf_counter()
        batch = select_batch(session, project, 50)
        batch_seconds = time.perf_counter() - started
    timings = []
    for i in range(serves):
        with session_scope(sessions) as session:
            project = session.scalars(select(Project)).one()
            user = session.scalars(select(User).where(User.username == f"ann{1 + i % 2}")).one()
            started = time.perf_counter()
            item = next_item(session, project, user)
            timings.append((time.perf_counter() - started) * 1000)
            if item is not None:
                add_label(session, item.id, user.id)
    timings.sort()
    p95 = timings[int(0.95 * (len(timings) - 1))]
    print(
        f"{name:<10} batch of {batch.size}: {batch_seconds:.2f} s | next post over {serves} serves: "
        f"p50 {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms, max {timings[-1]:.1f} ms",
        flush=True,
    )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--serves", type=int, default=100)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llsampler-") as folder:
        work = Path(folder)
        corpus = work / "corpus.csv"
        write_corpus(corpus, args.posts, labelled_share=0.0)
        print(f"pool of {args.posts:,} synthetic posts in 5 languages", flush=True)

        def run(name: str, url: str) -> None:
            build(url, corpus)
            measure(name, url, args.serves)

        on_each_database(args.backends, work, run)


if __name__ == "__main__":
    main()
