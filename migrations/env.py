"""Alembic environment: the URL comes from the caller's config (db.migrate) or LINGUALOOP_DATABASE_URL."""

from alembic import context
from sqlalchemy import Connection

from db.engine import make_engine
from db.models import Base
from db.settings import settings_from_env

config = context.config
target_metadata = Base.metadata


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or settings_from_env().database_url
    engine = make_engine(url)
    with engine.connect() as connection:
        _configure_and_run(connection)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("lingualoop migrations run online only: give a database URL.")
run_migrations_online()
