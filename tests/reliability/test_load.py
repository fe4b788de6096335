"""20 annotator clients label concurrently for 30 s on PostgreSQL through the app's domain functions: no label
lost or duplicated, no post labelled beyond the overlap wanted, every label in the export. (`bench/load.py` runs
the same clients for 60 s and prints the rates; here the half minute is about correctness, not speed.)"""

import csv
import statistics
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from annotator.accounts.access import OPERATOR
from annotator.corpus.export import export_project
from db.engine import make_engine, make_session_factory
from db.migrate import upgrade
from db.models import Annotation, AnnotationSource, Project, User
from testing.load import build_project, run_clients

pytestmark = [pytest.mark.reliability, pytest.mark.postgres]
CLIENTS, SECONDS, OVERLAP = 20, 30.0, 2


def test_twenty_annotators_for_half_a_minute_lose_nothing(postgres_url: str, tmp_path: Path) -> None:
    engine = make_engine(postgres_url, pool_size=CLIENTS + 2)
    upgrade(engine)
    build_project(engine, tmp_path, posts_per_language=2_000, clients=CLIENTS, overlap=OVERLAP)
    tallies = run_clients(engine, CLIENTS, SECONDS)
    committed = {(name, item): label for name, t in tallies.items() for item, label in t.committed.items()}
    latencies = sorted(x for t in tallies.values() for x in t.latencies)
    print(
        f"\n{len(committed):,} labels in {SECONDS:.0f} s from {CLIENTS} clients = {len(committed) / SECONDS:.1f}/s; "
        f"next post + answer p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {latencies[int(0.95 * (len(latencies) - 1))] * 1000:.0f} ms; "
        f"{sum(t.failures for t in tallies.values())} transactions retried"
    )
    print(sum((t.errors for t in tallies.values()), Counter()).most_common(5))
    assert len(committed) > 500  # the clients really worked
    with make_session_factory(engine)() as session:
        stored = {
            (username, item): label
            for username, item, label in session.execute(
                select(User.username, Annotation.item_id, Annotation.label)
                .join(User, User.id == Annotation.user_id)
                .where(Annotation.source == AnnotationSource.APP)
            )
        }
        assert stored == committed  # nothing lost, nothing extra
        per_item = Counter(item for _, item in stored)
        assert max(per_item.values()) <= OVERLAP  # never beyond the overlap wanted
        out = tmp_path / "export.csv"
        export_project(session, session.scalars(select(Project)).one(), out, by=OPERATOR)
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    external = {row["id"]: row for row in rows}
    with make_session_factory(engine)() as session:
        from db.models import Item

        ids = dict(session.execute(select(Item.id, Item.external_id)).all())
    exported = {(name, item): external[ids[item]][f"label__{name}"] for (name, item) in committed}
    assert exported == committed  # every label in the export
    engine.dispose()
