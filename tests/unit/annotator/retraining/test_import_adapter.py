"""Importing an adapter copies its folder with no write transaction open (on SQLite every annotator's answer would
wait on the copy), then records the version and moves the copy into place in one short transaction: a failure
leaves no version, no version folder and no staging folder."""

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from annotator.accounts.access import OPERATOR
from annotator.errors import LingualoopError
from annotator.retraining import requests
from annotator.retraining.requests import import_adapter
from db.engine import make_session_factory, session_scope
from db.models import Job, JobKind, ModelStatus, ModelVersion
from db.versions import adapter_folder, stored_folder
from testing.factories import make_project


@pytest.fixture
def sessions(sqlite_engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(sqlite_engine)


@pytest.fixture
def project_id(sessions: sessionmaker[Session]) -> int:
    with session_scope(sessions) as session:
        return make_project(session).id


def _adapter(folder: Path) -> Path:
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "tiny-base"}))
    (folder / "adapter_model.safetensors").write_bytes(b"\x00" * 1024)
    return folder


def _writable(database: Path) -> bool:
    """Whether another connection can take SQLite's write lock now."""
    connection = sqlite3.connect(database, timeout=0.2)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.rollback()
        return True
    except sqlite3.OperationalError:  # "database is locked"
        return False
    finally:
        connection.close()


def _project_folder(data_dir: Path, project_id: int) -> Path:
    return adapter_folder(data_dir, project_id, 0).parent


def test_the_copy_runs_with_no_transaction_open_and_lands_in_the_versions_folder(
    sessions: sessionmaker[Session], project_id: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, data_dir = _adapter(tmp_path / "published"), tmp_path / "data"
    writable: list[bool] = []
    real_copytree = shutil.copytree

    def watched_copytree(*args: Any, **kwargs: Any) -> Any:
        writable.append(_writable(tmp_path / "test.db"))
        return real_copytree(*args, **kwargs)

    monkeypatch.setattr(shutil, "copytree", watched_copytree)
    version, job = import_adapter(sessions, project_id, source, data_dir, by=OPERATOR)
    assert writable == [True]  # nobody waited on the copy
    target = adapter_folder(data_dir, project_id, version.id)
    assert (target / "adapter_model.safetensors").read_bytes() == b"\x00" * 1024
    assert [p.name for p in _project_folder(data_dir, project_id).iterdir()] == [
        target.name
    ]  # no staging left
    with sessions() as session:
        stored = session.get(ModelVersion, version.id)
        assert stored is not None and stored.status == ModelStatus.SCORING
        assert (
            stored.adapter_path == stored_folder(project_id, version.id) and stored.base_model == "tiny-base"
        )
        queued = session.get(Job, job.id)
        assert queued is not None and queued.kind == JobKind.SCORE
        assert queued.payload["model_version_id"] == version.id


def test_a_failed_record_leaves_no_version_no_folder_and_no_staging(
    sessions: sessionmaker[Session], project_id: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, data_dir = _adapter(tmp_path / "published"), tmp_path / "data"

    def refused(*_: Any, **__: Any) -> Any:
        raise RuntimeError("the job queue refused")

    monkeypatch.setattr(requests, "enqueue", refused)  # fails after the folder was moved into place
    with pytest.raises(RuntimeError, match="refused"):
        import_adapter(sessions, project_id, source, data_dir, by=OPERATOR)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(ModelVersion)) == 0
    assert list(_project_folder(data_dir, project_id).iterdir()) == []
    assert (source / "adapter_model.safetensors").exists()  # the source is never touched


def test_a_folder_left_by_a_crash_before_its_commit_is_replaced(
    sessions: sessionmaker[Session], project_id: int, tmp_path: Path
) -> None:
    source, data_dir = _adapter(tmp_path / "published"), tmp_path / "data"
    orphan = adapter_folder(data_dir, project_id, 1)  # SQLite gives the next version the id the crash took
    orphan.mkdir(parents=True)
    (orphan / "stale.bin").write_bytes(b"old")
    version, _ = import_adapter(sessions, project_id, source, data_dir, by=OPERATOR)
    assert version.id == 1
    assert sorted(p.name for p in orphan.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]


def test_a_folder_that_is_no_adapter_is_refused_before_anything_is_copied(
    sessions: sessionmaker[Session], project_id: int, tmp_path: Path
) -> None:
    (tmp_path / "not-an-adapter").mkdir()
    with pytest.raises(LingualoopError, match="not a LoRA adapter folder"):
        import_adapter(sessions, project_id, tmp_path / "not-an-adapter", tmp_path / "data", by=OPERATOR)
    assert not (tmp_path / "data").exists()
