"""Shared fixtures: real SQLite and a real private PostgreSQL, both migrated with Alembic."""

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_session_factory
from db.migrate import upgrade
from testing.postgres import PostgresCluster, start_cluster
from testing.tiny_models import build_tiny_gemma, build_tiny_llama

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
STRICT = os.environ.get("LINGUALOOP_STRICT_TESTS") == "1"
"""Set by .ci/run: a missing PostgreSQL or shared corpus fails the run instead of skipping tests."""


SLOW_MARKERS = {"browser", "labelstudio", "gemma", "reliability"}
SLOW_FOLDERS = {"browser", "integration", "reliability"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the slow tests (real browser, Label Studio, Gemma, worker processes, load and crash tests) `slow`, so
    that `pytest -m "not slow"` is the quick day-to-day run; the README's command runs everything."""
    for item in items:
        folder = item.path.relative_to(REPO_ROOT / "tests").parts[0]
        if folder in SLOW_FOLDERS or SLOW_MARKERS & {mark.name for mark in item.iter_markers()}:
            item.add_marker(pytest.mark.slow)


MYPY_COMMAND = (str(Path(sys.executable).parent / "mypy"), "app", "annotator", "trainer", "db", "core")
MYPY_RUN = pytest.StashKey[tuple["subprocess.Popen[bytes]", "tempfile._TemporaryFileWrapper[bytes]"]]()
"""mypy's run, started beside the tests when test_quality's mypy test was collected: strict mypy over every
package takes about two minutes of one core, which the suite's waits (browsers, servers, workers) leave idle."""


def pytest_collection_finish(session: pytest.Session) -> None:
    wanted = any(item.name == "test_mypy_strict_on_every_package" for item in session.items)
    if wanted and not session.config.option.collectonly:
        output = tempfile.NamedTemporaryFile(prefix="mypy-", suffix=".log")  # noqa: SIM115 (closed at the end)
        process = subprocess.Popen(
            MYPY_COMMAND,
            cwd=REPO_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: os.nice(10),  # behind the tests, so no test waits on it
        )
        session.config.stash[MYPY_RUN] = (process, output)


def pytest_sessionfinish(session: pytest.Session) -> None:
    started = session.config.stash.get(MYPY_RUN, None)
    if started is not None:
        process, output = started
        if process.poll() is None:  # the mypy test was deselected or the run stopped early
            process.kill()
            process.wait()
        output.close()


def skip_or_fail(reason: str) -> None:
    if STRICT:
        pytest.fail(f"{reason} (LINGUALOOP_STRICT_TESTS=1 makes this a failure)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The study's labelled tweets, read in place from ../shared (never copied into the repo)."""
    folder = Path(
        os.environ.get("LINGUALOOP_SHARED_DATA", REPO_ROOT.parent / "shared/data/immigration-tweets")
    )
    if not (folder / "train.csv").exists():
        skip_or_fail(f"the shared corpus is not at {folder}")
    return folder


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    cluster = start_cluster()
    if cluster is None:
        skip_or_fail("PostgreSQL is not installed (initdb/pg_ctl not found)")
    assert cluster is not None
    yield cluster
    cluster.stop()


def _new_postgres_database(cluster: PostgresCluster) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(cluster.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return cluster.url(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> str:
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return _new_postgres_database(cluster)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Runs a test once on SQLite and once on PostgreSQL."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file at the newest revision, made once: each test's database starts as a copy of it (the
    migrations themselves are tested in tests/unit/db/test_migrate.py)."""
    path = tmp_path_factory.mktemp("schema") / "migrated.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    with contextlib.closing(sqlite3.connect(path)) as connection:  # everything into the file that gets copied
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


MIGRATED_POSTGRES = "migrated_template"


def _migrated_copy(url: str, request: pytest.FixtureRequest) -> None:
    """Give the empty test database at `url` the newest schema by copying a migrated one (about 0.2 s less per
    test than running the migrations; 400 tests use it)."""
    if url.startswith("sqlite"):
        target = Path(url.removeprefix("sqlite:///"))
        if not target.exists():
            shutil.copyfile(request.getfixturevalue("migrated_sqlite"), target)
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    name = url.rsplit("/", 1)[1]
    admin = create_engine(cluster.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        if not connection.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": MIGRATED_POSTGRES}
        ):
            connection.execute(text(f'CREATE DATABASE "{MIGRATED_POSTGRES}"'))
            template = make_engine(cluster.url(MIGRATED_POSTGRES))
            upgrade(template)
            template.dispose()  # a template must have no connections when it is copied
        connection.execute(text(f'DROP DATABASE "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{MIGRATED_POSTGRES}"'))
    admin.dispose()


@pytest.fixture
def engine(db_url: str, request: pytest.FixtureRequest) -> Iterator[Engine]:
    _migrated_copy(db_url, request)
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url: str, request: pytest.FixtureRequest) -> Iterator[Engine]:
    _migrated_copy(sqlite_url, request)
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def readers(engine: Engine) -> sessionmaker[Session]:
    """Read-only sessions on the same database (they never take SQLite's write lock)."""
    return make_session_factory(engine, read_only=True)


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        yield session
        session.rollback()


# Tiny random models built from configs (the trainer unit tests, the worker process tests).
@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_gemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_gemma(tmp_path_factory.mktemp("tiny-gemma"))


@pytest.fixture(params=["llama", "gemma"])
def tiny_model(request: pytest.FixtureRequest) -> Path:
    return Path(request.getfixturevalue(f"tiny_{request.param}"))
