"""The Alembic revisions produce exactly the schema the models describe, on both databases."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from db.engine import make_engine
from db.migrate import (
    SchemaOutOfDateError,
    current_revision,
    downgrade,
    ensure_schema,
    head_revision,
    upgrade,
)
from db.models import Base


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
    assert current_revision(engine) == head_revision(engine)


def test_downgrade_to_empty_and_upgrade_again(engine: Engine) -> None:
    downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert {"items", "annotations", "jobs", "model_versions"} <= set(inspect(engine).get_table_names())


def test_sqlite_is_migrated_in_place(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    ensure_schema(engine)
    assert current_revision(engine) == head_revision(engine)


@pytest.mark.postgres
def test_postgres_asks_for_an_explicit_upgrade(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    with pytest.raises(SchemaOutOfDateError, match="lingualoop db upgrade"):
        ensure_schema(engine)
    upgrade(engine)
    ensure_schema(engine)  # now current: no error
