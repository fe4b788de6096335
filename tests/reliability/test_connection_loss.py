"""A database connection dropped in the middle of an import (PostgreSQL terminates the backend) rolls the whole
import back; the command line says what happened in one line."""

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from annotator.accounts.access import OPERATOR
from annotator.corpus.ingest import import_file
from annotator.corpus.projects import create_project, get_project
from app.cli import cli
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import upgrade
from testing.factories import posts, table_counts, write_csv

pytestmark = [pytest.mark.reliability, pytest.mark.postgres]


def test_a_dropped_connection_rolls_the_import_back(postgres_url: str, tmp_path: Path) -> None:
    engine = make_engine(postgres_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        create_project(session, "study", languages=["en"], by=OPERATOR)
    with sessions() as session:
        before = table_counts(session)
    path = write_csv(tmp_path / "big.csv", posts(5_000, label="pro"))
    killer = make_engine(postgres_url)

    with pytest.raises(DBAPIError), session_scope(sessions) as session:  # as the CLI and the app run it
        project = get_project(session, "study")
        backend = session.execute(text("SELECT pg_backend_pid()")).scalar_one()

        def drop_connection(phase: str, done: int, total: int) -> None:
            if phase == "saving labels" and done == 0:  # the posts are written, the transaction is open
                with killer.begin() as other:
                    other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})

        import_file(session, project, path, progress=drop_connection, by=OPERATOR)
    with sessions() as session:
        assert table_counts(session) == before  # nothing of the import is there
    killer.dispose()
    engine.dispose()


def test_the_cli_reports_a_lost_database_in_one_line(tmp_path: Path) -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:9/none"  # nothing listens on port 9
    result = CliRunner().invoke(cli, ["--database-url", url, "status"])
    assert result.exit_code == 1
    assert "Cannot reach the database" in result.output and "Traceback" not in result.output
