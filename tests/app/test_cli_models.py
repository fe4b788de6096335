"""Retrain, worker, models, model export and import through the command line, with a tiny model."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from testing.tiny_models import build_tiny_llama

LINGUALOOP = str(Path(sys.executable).parent / "lingualoop")
runner = CliRunner()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama-cli"))


def run(url: str, data: Path, *args: str, ok: bool = True) -> str:
    result = runner.invoke(
        cli, ["--database-url", url, "--data-dir", str(data), *args], catch_exceptions=False
    )
    output = result.stdout + (result.stderr if result.stderr_bytes is not None else "")
    assert (result.exit_code == 0) == ok, output
    return output


def worker_once(url: str, data: Path, tiny: Path) -> str:
    env = os.environ | {"LINGUALOOP_BASE_MODEL": str(tiny), "LINGUALOOP_EPOCHS": "1"}
    done = subprocess.run(
        [LINGUALOOP, "--database-url", url, "--data-dir", str(data), "worker", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_retrain_models_export_import(tmp_path: Path, tiny: Path) -> None:
    url, data = f"sqlite:///{tmp_path / 'cli.db'}", tmp_path / "data"
    run(url, data, "demo", "--no-serve")
    assert "No model versions yet" in run(url, data, "models")
    assert "Retrain queued as job 1" in run(url, data, "retrain")
    assert "Retrain queued as job 1" in run(url, data, "retrain")  # one queued retrain per project
    assert "model version 1 ready (current)" in worker_once(url, data, tiny)
    listing = run(url, data, "models")
    assert "ready" in listing and "yes" in listing and "ar (Arabic)" in listing
    assert "Version 1 is current: the newest evaluated version" in listing
    assert (
        "ECE" in listing
    )  # the expected calibration error of the calibrated probabilities, per language too
    assert "Version 1 is pinned and current" in run(url, data, "model", "pin", "1")
    assert "Version 1 is current: version 1 is pinned by a researcher" in run(url, data, "models")
    assert "Nothing pinned. Version 1 is current" in run(url, data, "model", "unpin")
    exported = tmp_path / "adapter-v1"
    assert "Adapter written" in run(url, data, "model", "export", str(exported))
    assert (exported / "adapter_config.json").exists() and (exported / "lingualoop-version.json").exists()
    assert "already exists" in run(url, data, "model", "export", str(exported), ok=False)
    run(url, data, "init", "replication")
    output = run(
        url, data, "model", "import", str(exported), "--project", "replication", "--base-model", str(tiny)
    )
    assert "Recorded model version 2" in output
    assert "model version 2 ready" in worker_once(url, data, tiny)
    assert "ready" in run(url, data, "models", "--project", "replication")


def test_model_command_errors(tmp_path: Path) -> None:
    url, data = f"sqlite:///{tmp_path / 'cli.db'}", tmp_path / "data"
    run(url, data, "demo", "--no-serve")
    assert "not a LoRA adapter folder" in run(url, data, "model", "import", str(tmp_path), ok=False)
    assert "no current model version" in run(url, data, "model", "export", str(tmp_path / "x"), ok=False)
    assert "has no version 5" in run(url, data, "model", "pin", "5", ok=False)


def test_retrain_wait_follows_the_job_to_the_end(tmp_path: Path, tiny: Path) -> None:
    url, data = f"sqlite:///{tmp_path / 'cli.db'}", tmp_path / "data"
    run(url, data, "demo", "--no-serve")
    env = os.environ | {"LINGUALOOP_BASE_MODEL": str(tiny), "LINGUALOOP_EPOCHS": "1"}
    worker = subprocess.Popen(
        [LINGUALOOP, "--database-url", url, "--data-dir", str(data), "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        output = run(url, data, "retrain", "--wait")
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    # A new project's Retrain is "auto"; a worker given a base model trains LoRA with it, and says so.
    assert "Job 1 done: model version 1 ready (current) (auto: lora on this worker)" in output
    assert worker.returncode == 0  # SIGTERM with no job running: a clean exit


def test_fast_retrain_runs_in_the_worker_command(tmp_path: Path, tiny: Path) -> None:
    url, data = f"sqlite:///{tmp_path / 'cli.db'}", tmp_path / "data"
    run(url, data, "demo", "--no-serve")
    assert "Retrain queued as job 1" in run(url, data, "retrain", "--fast")
    output = worker_once(url, data, tiny)
    assert "fast model version 1 ready" in output
    listing = run(url, data, "models")
    assert "fast" in listing and "ready" in listing


def test_retrain_takes_the_model_and_can_make_it_the_projects(tmp_path: Path) -> None:
    url, data = f"sqlite:///{tmp_path / 'cli.db'}", tmp_path / "data"
    run(url, data, "demo", "--no-serve")
    assert "Retrain queued as job 1 (auto)" in run(url, data, "retrain")  # a new project: the worker chooses
    assert "Retrain queued as job 2 (encoder)" in run(url, data, "retrain", "--backend", "encoder")
    assert "Retrain queued as job 3 (lora)" in run(url, data, "retrain", "--backend", "lora")
    assert "--make-default needs --backend" in run(url, data, "retrain", "--make-default", ok=False)
    assert "Unknown model 'bert'" in run(url, data, "retrain", "--backend", "bert", ok=False)
    run(url, data, "retrain", "--backend", "encoder", "--make-default")
    assert "Retrain queued as job 2 (encoder)" in run(url, data, "retrain")  # the project's choice now
