from pathlib import Path

import pytest
from sqlalchemy import text

from db.engine import make_engine, make_session_factory, session_scope
from db.settings import settings_from_env


def test_session_scope_rolls_back_on_error(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (v INTEGER)"))
    factory = make_session_factory(engine)
    with pytest.raises(ValueError), session_scope(factory) as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
        raise ValueError("boom")
    with session_scope(factory) as session:
        session.execute(text("INSERT INTO t VALUES (2)"))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT v FROM t")).scalars().all() == [2]


def test_sqlite_foreign_keys_and_wal(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'x.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_settings_default_to_sqlite_in_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LINGUALOOP_DATABASE_URL", raising=False)
    monkeypatch.setenv("LINGUALOOP_DATA_DIR", str(tmp_path))
    settings = settings_from_env()
    assert settings.database_url == f"sqlite:///{tmp_path / 'lingualoop.db'}" and settings.is_sqlite
    monkeypatch.setenv("LINGUALOOP_DATABASE_URL", "postgresql+psycopg://u@h/db")
    assert not settings_from_env().is_sqlite
