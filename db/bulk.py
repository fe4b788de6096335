"""Fast bulk inserts for imports: COPY on PostgreSQL, executemany elsewhere."""

import json
from collections.abc import Sequence
from typing import Any

import psycopg
from sqlalchemy import JSON, Table, insert, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session


def bulk_insert(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows (dicts with the same keys) in the session's transaction; no ids are returned."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        session.execute(insert(table), list(rows))
        return
    columns = list(rows[0])
    json_columns = {name for name in columns if isinstance(table.c[name].type, JSON)}
    names = ", ".join(f'"{name}"' for name in columns)
    driver_connection: Any = connection.connection.driver_connection
    statement = f'COPY "{table.name}" ({names}) FROM STDIN'
    try:
        with driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(
                    [json.dumps(row[name]) if name in json_columns else row[name] for name in columns]
                )
    except psycopg.Error as error:  # as SQLAlchemy's own statements would raise it (OperationalError, ...)
        raise DBAPIError.instance(statement, None, error, psycopg.Error) from error


def refresh_statistics(session: Session, *tables: str) -> None:
    """ANALYZE after a bulk load on PostgreSQL, so the planner sees the new rows at once instead of after the
    next autovacuum: without it, the first batch after an import or a new model version read the whole pool
    (5.9 s instead of well under one on a million posts, bench/sampler.py). SQLite's plans need no statistics."""
    if session.connection().dialect.name == "postgresql":
        for table in tables:
            session.execute(text(f'ANALYZE "{table}"'))
