"""Benchmark: push 10,000 posts to a real Label Studio server as tasks with predictions, annotate them all in Label
Studio (through its API, 8 at a time, not timed), then pull the 10,000 annotations; prints the seconds for push and pull.

    python -m bench.labelstudio                  # 10,000 tasks
    python -m bench.labelstudio --tasks 2000

The server comes from testing/labelstudio.py (installed once into LINGUALOOP_LS_VENV)."""

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from sqlalchemy import select

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user
from annotator.corpus.ingest import import_file
from annotator.corpus.projects import create_project
from annotator.labelstudio.client import connect
from annotator.labelstudio.sync import connect_project, pull, push
from bench.ingest import write_corpus
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import upgrade
from db.models import Item, LabelStudioLink, ModelVersion
from db.versions import mark_ready, write_predictions
from testing.labelstudio import running_labelstudio


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llls-") as folder:
        work = Path(folder)
        corpus = work / "corpus.csv"
        write_corpus(corpus, args.tasks, labelled_share=0.0)
        engine = make_engine(f"sqlite:///{work / 'bench.db'}")
        upgrade(engine)
        sessions = make_session_factory(engine)
        with running_labelstudio(work / "labelstudio") as server:
            with session_scope(sessions) as session:
                project = create_project(session, "bench", by=OPERATOR)
                import_file(session, project, corpus, by=OPERATOR)
                add_user(
                    session, "annotator", email="admin@lingualoop.local", by=OPERATOR
                )  # the server's admin labels
                version = ModelVersion(project_id=project.id, backend="fast", base_model="bench")
                session.add(version)
                session.flush()
                ids = list(session.scalars(select(Item.id).order_by(Item.id)))
                write_predictions(
                    session, version.id, ids, np.random.default_rng(0).dirichlet(np.ones(4), len(ids))
                )
                mark_ready(session, version)
                project_id = project.id
            connect_project(sessions, project_id, server.url, server.token, work, by=OPERATOR)
            started = time.perf_counter()
            report = push(sessions, project_id, args.tasks, work, by=OPERATOR)
            push_seconds = time.perf_counter() - started
            client = connect(server.url, server.token)
            with session_scope(sessions) as session:
                ls_project = session.scalars(select(LabelStudioLink)).one().ls_project_id
            result = [
                {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["pro"]}}
            ]
            task_ids = [
                t.id for t in client.tasks.list(project=ls_project, fields="task_only", page_size=1000)
            ]
            with ThreadPoolExecutor(8) as pool:  # open-source Label Studio has no bulk annotation endpoint
                list(pool.map(lambda task_id: client.annotations.create(id=task_id, result=result), task_ids))
            started = time.perf_counter()
            pulled = pull(
                sessions, make_session_factory(engine, read_only=True), project_id, work, by=OPERATOR
            )
            pull_seconds = time.perf_counter() - started
    print(
        f"push {report.tasks:,} tasks with predictions: {push_seconds:.1f} s ({report.tasks / push_seconds:,.0f}/s); "
        f"pull {pulled.annotations_added:,} annotations: {pull_seconds:.1f} s "
        f"({pulled.annotations_added / max(pull_seconds, 1e-9):,.0f}/s)"
    )


if __name__ == "__main__":
    main()
