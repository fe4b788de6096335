"""A project restored into a fresh data folder on a new database path classifies with its restored current
version exactly as the original did: the backup carries the model versions' files and restore puts them back."""

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from numpy.typing import NDArray
from sqlalchemy import select
from typer.testing import CliRunner

from annotator.accounts.access import OPERATOR
from annotator.corpus.ingest import ImportOptions, import_file
from annotator.jobloop import run_job
from annotator.retraining.requests import request_fast_retrain
from app.cli import cli
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import ensure_schema
from db.models import PROBABILITY_COLUMNS, Backend, Item, ModelVersion, Prediction, Split
from testing.factories import make_project, write_csv

LINGUALOOP = str(Path(sys.executable).parent / "lingualoop")
ABOUT = {
    "pro": "Refugees and migrants are welcome, they enrich our towns",
    "anti": "Close the borders, stop immigration now",
    "unrelated": "The football match ended two to one tonight",
}


def _said(output: str) -> str:
    return " ".join(output.split())  # rich wraps long lines at the terminal's width


def _fast_version(
    url: str, data: Path, folder: Path
) -> tuple[int, dict[str, tuple[str, NDArray[np.float64]]]]:
    """A project with labels and its fast model version; returns the version and its pool probabilities
    (external id -> (text, probabilities))."""
    rows = [
        {"id": f"t{i}", "text": f"{ABOUT[label]} ({i})", "lang": "en", "label": label}
        for i, label in enumerate(list(ABOUT) * 8)
    ]
    evals = [
        {"id": f"e{i}", "text": f"{ABOUT[label]} [{i}]", "lang": "en", "label": label}
        for i, label in enumerate(list(ABOUT) * 2)
    ]
    engine = make_engine(url)
    ensure_schema(engine)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        project = make_project(session)
        import_file(session, project, write_csv(folder / "pool.csv", rows), by=OPERATOR)
        import_file(
            session,
            project,
            write_csv(folder / "eval.csv", evals),
            options=ImportOptions(split=Split.EVAL),
            by=OPERATOR,
        )
        request_fast_retrain(session, project, by=OPERATOR)
    assert run_job(sessions, sessions, data, threading.Event(), lambda _m: None)
    with sessions() as session:
        version = session.scalars(select(ModelVersion)).one()
        assert version.backend == Backend.FAST and version.is_current
        scored = {
            external_id: (text, np.array(probabilities))
            for external_id, text, *probabilities in session.execute(
                select(Item.external_id, Item.text, *PROBABILITY_COLUMNS)
                .join(Prediction, Prediction.item_id == Item.id)
                .where(Prediction.model_version_id == version.id, Item.split == Split.POOL)
            )
        }
        version_id = version.id
    engine.dispose()
    return version_id, scored


def test_a_restored_project_classifies_with_its_restored_current_version(tmp_path: Path) -> None:
    url, data = f"sqlite:///{tmp_path / 'first' / 'lingualoop.db'}", tmp_path / "first"
    version_id, original = _fast_version(url, data, tmp_path)
    saved = tmp_path / "study.backup"
    done = CliRunner().invoke(cli, ["--database-url", url, "--data-dir", str(data), "backup", str(saved)])
    assert done.exit_code == 0 and "the files of 1 model version(s)" in _said(done.stdout), done.stdout
    shutil.rmtree(data)  # the first machine's data folder, database and model files are gone

    new_data = tmp_path / "second"
    new_url = f"sqlite:///{tmp_path / 'elsewhere' / 'restored.db'}"
    env = {"LINGUALOOP_DATA_DIR": str(new_data), "LINGUALOOP_DATABASE_URL": new_url}
    done = CliRunner().invoke(cli, ["restore", str(saved), "--yes"], env=env)
    assert done.exit_code == 0 and "the files of 1 model version(s)" in _said(done.stdout), done.stdout
    assert "not on this machine" not in _said(done.stdout)

    sample = sorted(original)[:9]
    (tmp_path / "in").mkdir()
    write_csv(
        tmp_path / "in" / "sample.csv", [{"id": i, "text": original[i][0], "lang": "en"} for i in sample]
    )
    out = tmp_path / "out"
    classified = subprocess.run(
        [
            LINGUALOOP,
            "classify",
            str(tmp_path / "in"),
            "--out",
            str(out),
            "--actors",
            "1",
            "--cpus-per-actor",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ | env | {"HF_HUB_OFFLINE": "1"},
    )
    assert classified.returncode == 0, classified.stderr[-3000:]
    assert f"Classified 9 posts with model version {version_id}" in classified.stdout
    rows = {
        row["id"]: row for p in sorted(out.glob("part-*.parquet")) for row in pq.read_table(p).to_pylist()
    }
    assert sorted(rows) == sample and {row["model_version"] for row in rows.values()} == {version_id}
    for external_id in sample:  # the restored version scores as the original scored its pool
        got = [rows[external_id][f"p_{label}"] for label in ("pro", "anti", "neutral", "unrelated")]
        np.testing.assert_allclose(got, original[external_id][1], atol=1e-5)
