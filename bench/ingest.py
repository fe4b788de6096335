"""Benchmark: import and export rows per second for a synthetic 1,000,000-post CSV, on SQLite and on a
private PostgreSQL cluster. Prints its figures; never run as a test.

    python -m bench.ingest                 # 1,000,000 posts, SQLite and PostgreSQL
    python -m bench.ingest --rows 100000 --backends sqlite
"""

import argparse
import csv
import random
import tempfile
import time
from pathlib import Path

from annotator.accounts.access import OPERATOR
from annotator.corpus.export import export_project
from annotator.corpus.ingest import import_file
from annotator.corpus.projects import create_project
from bench.databases import on_each_database
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import upgrade

WORDS = {
    "en": [
        "the",
        "border",
        "asylum",
        "seekers",
        "government",
        "new",
        "law",
        "city",
        "today",
        "people",
        "work",
        "family",
        "vote",
        "jobs",
        "rain",
        "match",
    ],
    "es": [
        "la",
        "frontera",
        "gobierno",
        "ley",
        "nueva",
        "ciudad",
        "hoy",
        "gente",
        "trabajo",
        "familia",
        "voto",
        "empleo",
        "lluvia",
        "partido",
    ],
    "ar": ["الحدود", "اللاجئين", "الحكومة", "قانون", "جديد", "المدينة", "اليوم", "الناس", "العمل", "الأسرة"],
    "hi": ["सीमा", "शरणार्थी", "सरकार", "कानून", "नया", "शहर", "आज", "लोग", "काम", "परिवार"],
    "de": ["die", "Grenze", "Regierung", "Gesetz", "neue", "Stadt", "heute", "Leute", "Arbeit", "Familie"],
}
LABELS = ["pro", "anti", "neutral", "unrelated"]


def write_corpus(path: Path, rows: int, labelled_share: float, seed: int = 0) -> None:
    rng = random.Random(seed)
    languages = list(WORDS)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "lang", "text", "label", "source"])
        for i in range(rows):
            lang = languages[i % len(languages)]
            words = WORDS[lang]
            text = " ".join(rng.choice(words) for _ in range(14)) + f" #{i}"
            label = LABELS[rng.randrange(4)] if rng.random() < labelled_share else ""
            writer.writerow([f"b{i}", lang, text, label, "synthetic"])


def run_backend(name: str, url: str, corpus: Path, rows: int, out_dir: Path) -> None:
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    start = time.perf_counter()
    with session_scope(sessions) as session:
        project = create_project(session, f"bench-{name}", by=OPERATOR)
        report = import_file(session, project, corpus, by=OPERATOR)
    import_seconds = time.perf_counter() - start
    out = out_dir / f"export-{name}.csv"
    start = time.perf_counter()
    with session_scope(sessions) as session:
        stats = export_project(session, project, out, by=OPERATOR)
    export_seconds = time.perf_counter() - start
    print(
        f"{name:<10} import {rows:>9,} rows in {import_seconds:6.1f} s = {rows / import_seconds:>8,.0f} rows/s "
        f"({report.posts_added:,} posts, {report.labels_added:,} labels) | "
        f"export {stats.rows:,} rows in {export_seconds:5.1f} s = {stats.rows / export_seconds:>8,.0f} rows/s",
        flush=True,
    )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--labelled-share", type=float, default=0.2, help="share of rows carrying a label")
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llbench-") as folder:
        work = Path(folder)
        corpus = work / "corpus.csv"
        start = time.perf_counter()
        write_corpus(corpus, args.rows, args.labelled_share)
        print(
            f"wrote {args.rows:,} synthetic posts ({corpus.stat().st_size / 1e6:.0f} MB) in "
            f"{time.perf_counter() - start:.1f} s",
            flush=True,
        )
        on_each_database(
            args.backends, work, lambda name, url: run_backend(name, url, corpus, args.rows, work)
        )


if __name__ == "__main__":
    main()
