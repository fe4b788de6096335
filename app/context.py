"""What every page needs: the database (built once per server from the environment), the signed-in user and the
chosen project, and a transaction to work in. Pages open a transaction at the edge and pass the session down."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from annotator.errors import LingualoopError, NotFoundError
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import ensure_schema
from db.models import Project, User
from db.settings import Settings, settings_from_env


@dataclass(frozen=True)
class Database:
    settings: Settings
    engine: Engine
    writer: sessionmaker[Session]
    reader: sessionmaker[Session]


@st.cache_resource(show_spinner=False)
def database() -> Database:
    """Built once per Streamlit server from LINGUALOOP_DATABASE_URL / LINGUALOOP_DATA_DIR."""
    settings = settings_from_env()
    engine = make_engine(settings.database_url)
    ensure_schema(engine)
    return Database(
        settings, engine, make_session_factory(engine), make_session_factory(engine, read_only=True)
    )


@contextmanager
def transaction(read_only: bool = False) -> Iterator[Session]:
    db = database()
    with session_scope(db.reader if read_only else db.writer) as session:
        yield session


def signed_in_user(session: Session) -> User:
    """The signed-in user, fresh from the database (a deactivated account is signed out)."""
    user = session.get(User, st.session_state.get("user_id"))
    if user is None or not user.active:
        st.session_state.pop("user_id", None)
        raise NotFoundError("Your session has ended: sign in again.")
    return user


def current_project(session: Session) -> Project:
    project = session.get(Project, st.session_state.get("project_id"))
    if project is None:
        raise NotFoundError(
            "No project yet: a researcher creates one with `lingualoop init` or `lingualoop demo`."
        )
    return project


def show_error(error: LingualoopError) -> None:
    st.error(str(error), icon=":material/error:")
