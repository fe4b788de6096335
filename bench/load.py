"""Benchmark: annotators labelling concurrently through the app's domain functions (next_item + record_answer,
one transaction each) on a private PostgreSQL cluster (and SQLite). Prints labels per second and latencies.

    python -m bench.load                         # 20 clients, 60 s, both databases
    python -m bench.load --clients 40 --seconds 30 --backends postgres
"""

import argparse
import statistics
import tempfile
from collections import Counter
from pathlib import Path

from bench.databases import on_each_database
from db.engine import make_engine
from db.migrate import upgrade
from testing.load import build_project, run_clients


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--overlap", type=int, default=2)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()

    def run(name: str, url: str) -> None:
        engine = make_engine(url, pool_size=args.clients + 2)
        upgrade(engine)
        with tempfile.TemporaryDirectory() as folder:
            build_project(
                engine, Path(folder), posts_per_language=3_000, clients=args.clients, overlap=args.overlap
            )
        tallies = run_clients(engine, args.clients, args.seconds)
        labels = sum(len(t.committed) for t in tallies.values())
        latencies = sorted(x for t in tallies.values() for x in t.latencies)
        errors = sum((t.errors for t in tallies.values()), Counter())
        print(
            f"{name:<10} {args.clients} clients, {args.seconds:.0f} s: {labels:,} labels = {labels / args.seconds:.1f}/s; "
            f"next post + answer p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"p95 {latencies[int(0.95 * (len(latencies) - 1))] * 1000:.0f} ms; "
            f"retried transactions {sum(errors.values())} {dict(errors) if errors else ''}",
            flush=True,
        )
        engine.dispose()

    with tempfile.TemporaryDirectory(prefix="llload-") as folder:
        on_each_database(args.backends, Path(folder), run)


if __name__ == "__main__":
    main()
