"""The databases a benchmark runs on: a SQLite file, then a private PostgreSQL cluster started for the run."""

from collections.abc import Callable
from pathlib import Path

from testing.postgres import start_cluster


def on_each_database(backends: str, work: Path, run: Callable[[str, str], None]) -> None:
    """Call run(name, url) for each of the comma-separated backends ("sqlite", "postgres")."""
    names = backends.split(",")
    if "sqlite" in names:
        run("sqlite", f"sqlite:///{work / 'bench.db'}")
    if "postgres" in names:
        cluster = start_cluster()
        if cluster is None:
            print("postgres   skipped: PostgreSQL is not installed", flush=True)
            return
        try:
            run("postgres", cluster.url())
        finally:
            cluster.stop()
