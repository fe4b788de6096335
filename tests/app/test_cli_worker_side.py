"""The commands that hand over to the model worker (`worker`, `experiment`, `classify`): the options they do not act
on reach `python -m trainer` untouched, the ones lingualoop sets are refused, and --help lists the worker's."""

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import app.cli.classify
import app.cli.serve
from app.cli import cli
from db.engine import make_engine, make_session_factory, session_scope
from db.models import Backend, ModelStatus, ModelVersion, Project
from db.runner import RunnerSettings

runner = CliRunner()


def invoke(tmp_path: Path, *args: str) -> tuple[int, str]:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    result = runner.invoke(cli, ["--database-url", url, "--data-dir", str(tmp_path / "data"), *args])
    return result.exit_code, result.stdout + (result.stderr if result.stderr_bytes is not None else "")


def test_worker_hands_every_typed_argument_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def run_workers(_state: object, worker_args: list[str], runner: RunnerSettings, *, once: bool) -> int:
        seen.update(worker_args=worker_args, runner=runner, once=once)
        return 0

    monkeypatch.setattr(app.cli.serve, "run_workers", run_workers)
    typed = [
        "--once",
        "--base-model",
        "tiny",
        "--heartbeat-every",
        "0.5",
        "--epochs=1",
        "--ray-address",
        "r:1",
    ]
    code, said = invoke(tmp_path, "worker", *typed)
    assert code == 0, said
    assert seen["worker_args"] == typed  # untouched, in order, for the model worker
    # the web side's loop acts on the same heartbeat options, the rest from RunnerSettings
    assert seen["runner"] == RunnerSettings(heartbeat_seconds=0.5) and seen["once"] is True
    invoke(tmp_path, "worker")
    assert seen["worker_args"] == [] and seen["runner"] == RunnerSettings() and seen["once"] is False


def test_what_lingualoop_sets_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app.cli.serve, "run_workers", lambda *args, **kwargs: pytest.fail("started"))
    code, said = invoke(tmp_path, "worker", "--data-dir", "elsewhere")
    assert code == 2 and "--data-dir is lingualoop's to set" in said
    code, said = invoke(tmp_path, "worker", "--database-url=sqlite://")
    assert code == 2 and "--database-url is lingualoop's to set" in said


def test_experiment_hands_its_arguments_to_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed: list[list[str]] = []
    monkeypatch.setattr(app.cli.serve, "_run_worker_process", lambda _ctx, args: handed.append(args))
    typed = [
        "--protocol",
        "others",
        "--backend",
        "encoder",
        "--encoder-seed",
        "3",
        "--folds",
        "2",
        "--epochs",
        "1",
    ]
    code, said = invoke(tmp_path, "experiment", *typed)
    assert code == 0, said
    assert handed == [["experiment", *typed]]
    # The fast model runs here: a worker's option would be silently ignored, so it is refused.
    code, said = invoke(tmp_path, "experiment", "--protocol", "others", "--backend", "fast", "--epochs", "1")
    assert code == 1 and "--epochs 1: only a LoRA or encoder run takes these" in said
    assert len(handed) == 1


def test_classify_hands_on_the_inputs_and_options_with_the_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke(tmp_path, "init", "p")[0] == 0
    sessions = make_session_factory(make_engine(f"sqlite:///{tmp_path / 'w.db'}"))
    with session_scope(sessions) as session:
        project = session.query(Project).one()
        version = ModelVersion(
            project_id=project.id, backend=Backend.FAST, base_model="m", status=ModelStatus.READY
        )
        session.add(version)
        session.flush()
        version_id = version.id
    handed: list[list[str]] = []
    monkeypatch.setattr(app.cli.classify, "_run_worker_process", lambda _ctx, args: handed.append(args))
    code, said = invoke(
        tmp_path, "classify", "a.csv", "--keep", "month", "--version", str(version_id), "b/", "--out", "o"
    )
    assert code == 0, said
    assert handed == [
        ["classify", "a.csv", "--keep", "month", "b/", "--out", "o", "--version-id", str(version_id)]
    ]
    code, said = invoke(tmp_path, "classify", "a.csv", "--out", "o", "--version-id", "7")
    assert code == 2 and "--version-id is lingualoop's to set" in said


@pytest.mark.parametrize(
    ("command", "ours", "workers"),
    [
        ("worker", "--heartbeat-timeout", ["--base-model", "--epochs", "--ray-address"]),
        ("experiment", "--average", ["--pools", "--encoder-members", "[default: 2.0]"]),
        ("classify", "--project", ["--text-col", "--unit-rows", "[default: 2000]", "inputs"]),
    ],
)
def test_help_lists_the_worker_options(tmp_path: Path, command: str, ours: str, workers: list[str]) -> None:
    code, said = invoke(tmp_path, command, "--help")
    assert code == 0 and ours in said and "Handed on untouched" in said
    assert all(name in said for name in workers), said
    assert "--database-url" not in said.split("Handed on untouched")[1]  # lingualoop sets it
