"""Annotators hammering the database through the same domain functions the app calls (next_item, then
record_answer, one transaction each), from threads; used by tests/reliability/test_load.py and bench/load.py."""

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user
from annotator.annotation.annotate import Answer, record_answer
from annotator.annotation.serving import next_item
from annotator.corpus.ingest import import_file
from annotator.corpus.projects import create_project
from core.labels import LABELS
from db.engine import make_session_factory, session_scope
from db.models import Project, User
from testing.factories import posts, write_csv

LANGUAGES = ("en", "es", "de", "ar")


@dataclass
class ClientTally:
    committed: dict[int, str] = field(default_factory=dict)
    """item id -> label, for every answer whose transaction committed."""
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    empty: int = 0


def build_project(engine: Engine, folder: Path, posts_per_language: int, clients: int, overlap: int) -> None:
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        project = create_project(session, "load", languages=list(LANGUAGES), by=OPERATOR)
        project.overlap = overlap
        project.sampling = {"fast_every": 0}
        for lang in LANGUAGES:
            import_file(
                session,
                project,
                write_csv(folder / f"{lang}.csv", posts(posts_per_language, lang, lang)),
                by=OPERATOR,
            )
        for i in range(clients):
            add_user(session, f"client{i}", languages=random.Random(i).sample(LANGUAGES, 2), by=OPERATOR)


def run_clients(engine: Engine, clients: int, seconds: float) -> dict[str, ClientTally]:
    sessions = make_session_factory(engine)
    deadline = time.monotonic() + seconds
    tallies = {f"client{i}": ClientTally() for i in range(clients)}

    def client(name: str) -> None:
        tally, rng = tallies[name], random.Random(name)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                with session_scope(sessions) as session:
                    project = session.scalars(select(Project).where(Project.name == "load")).one()
                    user = session.scalars(select(User).where(User.username == name)).one()
                    item = next_item(session, project, user)
                    if item is None:
                        tally.empty += 1
                        answered = None
                    else:
                        label = rng.choice(LABELS)
                        record_answer(session, project, user, item.id, Answer.of_label(label), seconds=1.0)
                        answered = (item.id, label)
            except DBAPIError as error:
                tally.failures += 1  # rolled back: the client tries again, as the app would
                tally.errors[type(error.orig).__name__ + ": " + str(error.orig).splitlines()[0][:120]] += 1
                continue
            if answered is not None:
                tally.committed[answered[0]] = answered[1]
                tally.latencies.append(time.perf_counter() - started)
            elif tally.empty > 3:
                return

    threads = [threading.Thread(target=client, args=(name,)) for name in tallies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tallies
