"""The Alembic revisions produce exactly the schema the models describe, on both databases."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from annotator.accounts.access import OPERATOR
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import (
    SchemaOutOfDateError,
    current_revision,
    downgrade,
    ensure_schema,
    head_revision,
    upgrade,
)
from db.models import Base, Item, ModelStatus, ModelVersion, prediction_row


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


def test_0003_keeps_predictions_and_fills_their_uncertainty_scores(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine, "0002")
    with session_scope(make_session_factory(engine)) as session:  # tables that 0003 leaves alone
        session.execute(  # projects in SQL: the model has columns of later revisions
            text(
                "INSERT INTO projects (name, label_names, guidelines, languages, overlap, sampling, created_at) "
                "VALUES ('study', '{}', '', '[]', 1, '{}', CURRENT_TIMESTAMP)"
            )
        )
        project_id = session.execute(text("SELECT id FROM projects")).scalar_one()
        item = Item(
            project_id=project_id,
            external_id="a",
            text="x",
            language="en",
            language_source="given",
            text_hash="h",
        )
        version = ModelVersion(
            project_id=project_id, backend="fast", base_model="b", status=ModelStatus.READY
        )
        session.add_all([item, version])
        session.flush()
        session.execute(
            text(
                "INSERT INTO predictions (model_version_id, item_id, p_pro, p_anti, p_neutral, p_unrelated, "
                "confidence) VALUES (:v, :i, 0.5, 0.3, 0.2, 0.0, 0.5)"
            ),
            {"v": version.id, "i": item.id},
        )
    upgrade(engine)
    with engine.begin() as connection:
        margin, entropy = connection.execute(text("SELECT margin, entropy FROM predictions")).one()
        assert margin == pytest.approx(0.2)
        assert entropy == pytest.approx(prediction_row(1, 1, [0.5, 0.3, 0.2, 0.0])["entropy"])
        connection.execute(
            text(
                "INSERT INTO jobs (project_id, kind, payload, status, attempts, max_attempts, progress, progress_message, created_at) VALUES (:p, 'fast_retrain', '{}', 'queued', 0, 3, 0, '', CURRENT_TIMESTAMP)"
            ),
            {"p": project_id},
        )
    downgrade(engine, "0002")
    with engine.begin() as connection:
        assert connection.execute(text("SELECT count(*) FROM predictions")).scalar() == 1
        assert connection.execute(text("SELECT count(*) FROM jobs")).scalar() == 0
    engine.dispose()


def test_downgrade_one_step_and_upgrade_again_keeps_the_data(db_url: str) -> None:
    from annotator.demo import create_demo_project
    from db.models import Annotation, Item, User

    engine = make_engine(db_url)
    upgrade(engine)
    with session_scope(make_session_factory(engine)) as session:
        create_demo_project(session, by=OPERATOR)

    def counts() -> tuple[int, int, int]:
        with engine.connect() as connection:
            return tuple(  # type: ignore[return-value]
                connection.execute(text(f"SELECT count(*) FROM {table.__tablename__}")).scalar_one()
                for table in (Item, Annotation, User)
            )

    before = counts()
    head = head_revision(engine)
    downgrade(engine, "-1")
    assert current_revision(engine) != head
    assert counts() == before
    upgrade(engine)
    assert current_revision(engine) == head and counts() == before
    engine.dispose()


def test_alembic_check_finds_nothing_to_generate(engine: Engine) -> None:
    from alembic import command

    from db.migrate import alembic_config

    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.check(config)  # raises when the models and the revisions differ
