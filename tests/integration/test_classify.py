"""`classify` against the real parts: Ray (a local Ray, and a cluster of two nodes on this machine), a tiny LoRA
model version and the fast model, real files. Each id comes out exactly once after a lost actor, a lost node
and a SIGKILLed driver."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from db.engine import session_scope
from db.models import Backend, ModelStatus, ModelVersion
from db.versions import adapter_folder
from testing.factories import make_project, write_csv, write_jsonl
from trainer.archive import Columns
from trainer.classify import ClassifyRequest, run_classify
from trainer.config import LoraSettings, ModelSettings, WorkerSettings
from trainer.distributed import RayOptions
from trainer.version_scorers import VersionSpec, open_scorer, version_spec

TEXTS = [
    "Borders should stay open to people fleeing war",
    "Send them all back, no more migrants",
    "Parliament debates the new asylum law today",
    "Great match last night, what a goal",
    "Los inmigrantes enriquecen nuestra cultura",
    "Il governo chiude i porti ai migranti",
]


def _rows(n: int, prefix: str) -> list[dict[str, str]]:
    return [
        {"id": f"{prefix}{i}", "text": f"{TEXTS[i % len(TEXTS)]} #{i}", "lang": "", "country": f"c{i % 3}"}
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def lora_version(tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path) -> tuple[WorkerSettings, Path]:
    """A tiny LoRA adapter saved as a version's folder would be (no training: scoring is what is tested)."""
    from trainer.modeling import load_model, save_adapter

    data_dir = tmp_path_factory.mktemp("classify-data")
    settings = WorkerSettings(
        data_dir=data_dir, model=ModelSettings(base_model=str(tiny_llama)), lora=LoraSettings(r=4, alpha=8)
    )
    loaded = load_model(settings.model, settings.lora, settings.models_dir, max_post_tokens=32, seed=1)
    folder = adapter_folder(data_dir, 1, 1)
    save_adapter(loaded, folder, {"model_version": 1})
    return settings, folder


@pytest.fixture
def spec(sqlite_url: str, lora_version: tuple[WorkerSettings, Path]) -> VersionSpec:
    from db.engine import make_engine, make_session_factory
    from db.migrate import ensure_schema

    settings, folder = lora_version
    engine = make_engine(sqlite_url)
    ensure_schema(engine)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        project = make_project(session)
        version = ModelVersion(
            project_id=project.id,
            backend=Backend.LORA,
            base_model=settings.model.base_model,
            status=ModelStatus.READY,
            adapter_path=str(folder),
            training_snapshot={},
        )
        session.add(version)
        session.flush()
        found = version_spec(version, str(version.id), settings.data_dir)
    engine.dispose()
    return found


def _inputs(folder: Path) -> tuple[Path, ...]:
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(folder / "a.csv", [*_rows(70, "a"), {"id": "blank", "text": " ", "lang": "", "country": ""}])
    write_jsonl(folder / "b.jsonl", _rows(45, "b"))
    with (folder / "b.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('{"id": "broken", "text": "no closing brace"\n')  # counted as unreadable, not scored
    pq.write_table(pa.Table.from_pylist(_rows(30, "c")), folder / "c.parquet")
    return folder / "a.csv", folder / "b.jsonl", folder / "c.parquet"


def _output(out: Path) -> pa.Table:
    return pa.concat_tables(pq.read_table(p) for p in sorted(out.glob("part-*.parquet")))


def _assert_complete(out: Path, expected_ids: set[str]) -> pa.Table:
    table = _output(out)
    ids = table.column("id").to_pylist()
    assert len(ids) == len(set(ids)), "an id was written twice"
    assert set(ids) == expected_ids
    assert not list(out.glob(".part-*"))  # no partial shard left behind
    return table


@pytest.fixture
def stale_ray_address(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Ray's temp folder naming, in ray_current_cluster, a cluster that is gone: what a `ray start` or a test
    cluster killed before it shut down leaves behind. Ray's own default (address None) would join it and wait on
    that address for minutes (seen in CI); a local Ray must start its own."""
    folder = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's socket paths lie under it
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nobody = probe.getsockname()[1]
    (folder / "ray").mkdir()
    (folder / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{nobody}")
    monkeypatch.setenv("RAY_TMPDIR", str(folder))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _all_ids() -> set[str]:
    return {f"{p}{i}" for p, n in (("a", 70), ("b", 45), ("c", 30)) for i in range(n)}


def test_classify_on_a_local_ray_matches_the_worker_s_scoring(
    tmp_path: Path, spec: VersionSpec, lora_version: tuple[WorkerSettings, Path], stale_ray_address: Path
) -> None:
    settings, _ = lora_version
    request = ClassifyRequest(
        inputs=_inputs(tmp_path / "in"),
        out=tmp_path / "out",
        columns=Columns(keep=("country",)),
        unit_rows=20,
    )
    seen: list[tuple[int, int]] = []
    manifest = run_classify(
        request,
        spec,
        settings,
        RayOptions(actors=2, cpus_per_actor=1),
        progress=lambda d, t: seen.append((d, t)),
    )
    table = _assert_complete(request.out, _all_ids())
    assert manifest.rows_scored == 145 and manifest.shards == 4 + 3 + 2
    assert (manifest.unreadable, manifest.empty) == (1, 1)
    assert "b.jsonl, line 46: not valid JSON" in manifest.inputs[1]["problems"][0]
    assert manifest.timings["scored_this_run"] == 145 and seen[-1] == (145, 145)
    assert table.column_names[:9] == [
        "id",
        "language",
        "p_pro",
        "p_anti",
        "p_neutral",
        "p_unrelated",
        "label",
        "confidence",
        "model_version",
    ]
    assert set(table.column("country").to_pylist()) == {"c0", "c1", "c2"}
    assert set(table.column("model_version").to_pylist()) == {spec.id}
    rows = {row["id"]: row for row in table.to_pylist()}
    assert rows["a4"]["language"] == "es" and rows["a5"]["language"] == "it"  # detected: the files gave none
    # The same probabilities as the worker's own scoring path, loaded here in-process.
    scorer = open_scorer(spec, settings, log=lambda _m: None)
    some = ["a0", "a3", "b7", "c29"]
    texts = [f"{TEXTS[int(i[1:]) % len(TEXTS)]} #{i[1:]}" for i in some]
    expected = scorer.score(texts)
    got = np.array(
        [[rows[i][f"p_{label}"] for label in ("pro", "anti", "neutral", "unrelated")] for i in some]
    )
    np.testing.assert_allclose(got, expected, atol=2e-5)

    again = run_classify(request, spec, settings, RayOptions(actors=1, cpus_per_actor=1))
    assert again.timings["scored_this_run"] == 0 and again.rows_scored == 145
    _assert_complete(request.out, _all_ids())


def test_a_killed_actor_is_replaced_and_no_row_is_written_twice(
    tmp_path: Path,
    spec: VersionSpec,
    lora_version: tuple[WorkerSettings, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, _ = lora_version
    marker = tmp_path / "killed-once"
    monkeypatch.setenv(
        "LINGUALOOP_FAILPOINT", "classify-shard"
    )  # after a shard is written, before its rename
    monkeypatch.setenv("LINGUALOOP_FAILPOINT_ONCE", str(marker))
    request = ClassifyRequest(inputs=_inputs(tmp_path / "in"), out=tmp_path / "out", unit_rows=20)
    manifest = run_classify(request, spec, settings, RayOptions(actors=2, cpus_per_actor=1))
    assert marker.exists()  # an actor died mid-unit
    _assert_complete(request.out, _all_ids())
    assert manifest.rows_scored == 145


@pytest.fixture
def two_nodes() -> Iterator[object]:
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    node = cluster.add_node(num_cpus=2)
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    try:
        yield cluster, node
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_a_lost_node_on_a_two_node_cluster(
    tmp_path: Path,
    spec: VersionSpec,
    lora_version: tuple[WorkerSettings, Path],
    two_nodes: tuple[object, object],
) -> None:
    cluster, node = two_nodes
    settings, _ = lora_version
    out = tmp_path / "out"
    request = ClassifyRequest(inputs=_inputs(tmp_path / "in"), out=out, unit_rows=5)

    def lose_the_node() -> None:
        while not list(out.glob("part-*.parquet")):
            time.sleep(0.05)
        cluster.remove_node(node)  # type: ignore[attr-defined]

    killer = threading.Thread(target=lose_the_node, daemon=True)
    killer.start()
    manifest = run_classify(request, spec, settings, RayOptions(actors=3, cpus_per_actor=1))
    killer.join(timeout=60)
    assert not killer.is_alive()
    _assert_complete(out, _all_ids())
    assert manifest.rows_scored == 145


def _trainer(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trainer", *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_the_driver_sigkilled_then_rerun(
    tmp_path: Path,
    sqlite_url: str,
    spec: VersionSpec,
    lora_version: tuple[WorkerSettings, Path],
    stale_ray_address: Path,
) -> None:
    settings, _ = lora_version
    inputs = [str(p) for p in _inputs(tmp_path / "in")]
    out = tmp_path / "out"
    args = ["classify", *inputs, "--version-id", str(spec.id), "--out", str(out), "--unit-rows", "10"]
    args += ["--actors", "1", "--cpus-per-actor", "1"]
    env = os.environ | {
        "LINGUALOOP_DATABASE_URL": sqlite_url,
        "LINGUALOOP_DATA_DIR": str(settings.data_dir),
        "HF_HUB_OFFLINE": "1",
    }
    killed = _trainer(args, env | {"LINGUALOOP_FAILPOINT": "classify-driver"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    shards = list(out.glob("part-*.parquet"))
    assert 1 <= len(shards) < 15  # stopped mid-run
    finished = _trainer(args, env)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "Classified 145 posts" in finished.stdout
    assert "Not scored: 1 unreadable row(s), 1 without text." in finished.stdout
    _assert_complete(out, _all_ids())


# --- Through the command line, with the fast model of the demo project ---------------------------------------

LINGUALOOP = str(Path(sys.executable).parent / "lingualoop")


def _cli(url: str, data: Path, *args: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from app.cli import cli

    result = CliRunner().invoke(cli, ["--database-url", url, "--data-dir", str(data), *args])
    return result.exit_code, result.stdout + (result.stderr if result.stderr_bytes is not None else "")


def test_lingualoop_classify_with_the_fast_model_and_its_refusals(tmp_path: Path) -> None:
    from sqlalchemy import select

    from annotator.accounts.access import OPERATOR
    from annotator.demo import demo_corpus_path
    from annotator.jobloop import run_job
    from annotator.retraining.requests import request_fast_retrain
    from db.engine import make_engine, make_session_factory
    from db.models import PROBABILITY_COLUMNS, Item, Prediction, Project, Split
    from trainer.cli import cli as trainer_cli

    url, data, out = f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "data", tmp_path / "out"
    corpus = str(demo_corpus_path())
    assert _cli(url, data, "demo", "--no-serve")[0] == 0
    code, said = _cli(url, data, "classify", corpus, "--out", str(out))
    assert code == 1 and "has no current model version (press Retrain first)" in said

    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        project = session.scalars(select(Project)).one()
        request_fast_retrain(session, project, by=OPERATOR)
        training = ModelVersion(
            project_id=project.id, backend=Backend.LORA, base_model="m", status=ModelStatus.TRAINING
        )
        session.add(training)
    assert run_job(sessions, sessions, data, threading.Event(), lambda _m: None)
    with sessions() as session:
        fast = session.scalars(select(ModelVersion).where(ModelVersion.backend == Backend.FAST)).one()
        expected = {
            external_id: np.array(probabilities)
            for external_id, *probabilities in session.execute(
                select(Item.external_id, *PROBABILITY_COLUMNS)
                .join(Prediction, Prediction.item_id == Item.id)
                .where(Prediction.model_version_id == fast.id, Item.split == Split.POOL)
            )
        }
        training_id = session.scalars(
            select(ModelVersion.id).where(ModelVersion.status == ModelStatus.TRAINING)
        ).one()
    engine.dispose()

    code, said = _cli(url, data, "classify", corpus, "--out", str(out), "--version", str(training_id))
    assert code == 1 and f"Model version {training_id} is training, not ready" in said
    # The worker's own entry point checks the inputs before it starts Ray or loads a model.
    from typer.testing import CliRunner

    env = {"LINGUALOOP_DATABASE_URL": url, "LINGUALOOP_DATA_DIR": str(data)}
    refused = CliRunner().invoke(
        trainer_cli,
        ["classify", corpus, "--version-id", str(fast.id), "--out", str(out), "--text-col", "body"],
        env=env,
    )
    assert refused.exit_code == 1 and "has no column 'body' (--text-col)" in refused.stderr
    assert not list(out.glob("part-*"))
    refused = CliRunner().invoke(
        trainer_cli, ["classify", corpus, "--version-id", "999", "--out", str(out)], env=env
    )
    assert refused.exit_code == 1 and "There is no model version 999." in refused.stderr

    options = ["--keep", "month", "--actors", "1", "--cpus-per-actor", "1", "--unit-rows", "100"]
    done = subprocess.run(
        [
            LINGUALOOP,
            "--database-url",
            url,
            "--data-dir",
            str(data),
            "classify",
            corpus,
            "--out",
            str(out),
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ | {"HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Classified 304 posts with model version {fast.id} into 4 shard(s)" in done.stdout
    assert "posts/s" in done.stdout  # the progress line
    table = _output(out)
    rows = {row["id"]: row for row in table.to_pylist()}
    assert len(rows) == table.num_rows == 304 and set(table.column("model_version").to_pylist()) == {fast.id}
    assert {row["month"] for row in rows.values()} == {"2025-01", "2025-02", "2025-03", "2025-04"}
    for external_id, probabilities in expected.items():  # the archive's scores are the pool's
        got = [rows[external_id][f"p_{label}"] for label in ("pro", "anti", "neutral", "unrelated")]
        np.testing.assert_allclose(got, probabilities, atol=1e-5)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["backend"] == "fast" and manifest["rows_scored"] == 304
    # The shards are findings' input as they are (the staging folder beside them is left out).
    code, said = _cli(
        url, data, "prevalence", "--input", str(out), "--by", "lang,month", "--out", str(tmp_path / "t.csv")
    )
    assert code == 0 and f"Model version {fast.id}: shares of all posts" in said and "rows written" in said, (
        said
    )


def test_the_worker_rescores_the_pool_on_a_ray_cluster(
    tmp_path: Path, sqlite_url: str, tiny_llama: Path, two_nodes: tuple[object, object]
) -> None:
    from dataclasses import replace

    from sqlalchemy import func, select

    from annotator.accounts.access import OPERATOR
    from annotator.demo import create_demo_project
    from db.engine import make_engine, make_session_factory
    from db.migrate import ensure_schema
    from db.models import PROBABILITY_COLUMNS, Item, Prediction, Split
    from trainer.config import TrainSettings
    from trainer.lora_retrain import run_retrain

    cluster, _ = two_nodes
    engine = make_engine(sqlite_url)
    ensure_schema(engine)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        project_id = create_demo_project(session, by=OPERATOR).project.id
    settings = WorkerSettings(
        data_dir=tmp_path / "data",
        model=ModelSettings(base_model=str(tiny_llama)),
        lora=LoraSettings(r=4, alpha=8),
        train=TrainSettings(epochs=1, batch_size=8),
        ray_address=cluster.address,  # type: ignore[attr-defined]
        pool_page=40,
    )
    messages: list[str] = []
    version_id = run_retrain(sessions, settings, project_id, lambda _f, message: messages.append(message))
    assert any("228 pool posts on Ray with 1 actor(s), 2 CPU each" in m for m in messages), "\n".join(
        messages
    )
    with sessions() as session:
        version = session.get(ModelVersion, version_id)
        assert version is not None and version.status == ModelStatus.READY
        pool = session.scalar(
            select(func.count()).where(Item.split == Split.POOL, Item.project_id == project_id)
        )
        count = session.scalar(select(func.count()).where(Prediction.model_version_id == version_id))
        assert count == pool + 70  # every pool post once (the eval posts are the worker's own)
        sample = session.execute(
            select(Item.text, *PROBABILITY_COLUMNS)
            .join(Prediction, Prediction.item_id == Item.id)
            .where(Prediction.model_version_id == version_id, Item.split == Split.POOL)
            .order_by(Item.id)
            .limit(6)
        ).all()
        spec = version_spec(version, str(version_id), settings.data_dir)
    engine.dispose()
    scorer = open_scorer(replace(spec, base_model=str(tiny_llama)), settings, log=lambda _m: None)
    np.testing.assert_allclose(
        scorer.score([row[0] for row in sample]), np.array([row[1:] for row in sample]), atol=2e-5
    )
