"""The worker's own entry point (`python -m trainer`): its defaults are the shared settings', its --help source for
`lingualoop`, and a stop signal caught during start-up (even one a library swallowed) stops it before it serves."""

import contextlib
import importlib
import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import trainer.worker
from db.engine import make_engine, make_session_factory
from db.runner import RunnerSettings
from trainer.cli import cli
from trainer.config import WorkerSettings
from trainer.stops import StopSignals
from trainer.worker import run_worker

runner = CliRunner()


@pytest.fixture(autouse=True)
def python_s_own_sigint_handler() -> Iterator[None]:
    """Ctrl-C as Python sets it up in a terminal, also where the test run inherited SIGINT ignored (a shell's
    background job): the tests below check that it is given back."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_worker_defaults_are_runner_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_run_worker(_sessions: object, settings: WorkerSettings, **kwargs: Any) -> None:
        seen.update(settings=settings, **kwargs)

    monkeypatch.setattr(trainer.worker, "run_worker", fake_run_worker)
    url, data = f"sqlite:///{tmp_path / 't.db'}", str(tmp_path / "data")
    result = runner.invoke(cli, ["worker", "--database-url", url, "--data-dir", data], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert seen["settings"].runner == RunnerSettings()  # the heartbeat and stale timeouts the web side uses
    assert seen["once"] is False and not seen["stopping"].is_set()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back


def test_options_describe_a_command_for_lingualoop_help() -> None:
    result = runner.invoke(cli, ["options", "worker"])
    described = {option["names"][0]: option for option in json.loads(result.stdout)}
    assert described["--heartbeat-timeout"]["help"].endswith("[default: 120.0]")
    assert described["--base-model"]["usage"] == "--base-model <str>"
    assert runner.invoke(cli, ["options", "nope"]).exit_code == 2


def _swallowed_sigint(stops: StopSignals) -> None:
    """A Ctrl-C during an import that swallows its KeyboardInterrupt."""
    with contextlib.suppress(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
    assert stops.event.is_set()


def test_a_stop_caught_during_startup_stops_the_worker_before_it_serves(tmp_path: Path) -> None:
    stops = StopSignals().install()
    try:
        _swallowed_sigint(stops)
        said: list[str] = []
        sessions = make_session_factory(make_engine(f"sqlite:///{tmp_path / 'none.db'}"))
        run_worker(sessions, WorkerSettings(data_dir=tmp_path), stopping=stops.event, log=said.append)
        assert said == ["stopped during start-up: no job served"]
    finally:
        stops.restore()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_other_commands_get_a_caught_stop_again() -> None:
    stops = StopSignals().install()
    _swallowed_sigint(stops)
    with pytest.raises(KeyboardInterrupt):
        stops.release()  # what `python -m trainer experiment` does before it starts: Ctrl-C stops it as usual
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_after_a_swallowed_stop_the_next_import_stops_the_start_up() -> None:
    stops = StopSignals().install()
    try:
        _swallowed_sigint(stops)
        sys.modules.pop("colorsys", None)  # a module nothing here has imported yet
        with pytest.raises(KeyboardInterrupt, match="while importing colorsys"):
            importlib.import_module("colorsys")
    finally:
        stops.restore()
    assert importlib.import_module("colorsys").rgb_to_hsv(0, 0, 0) == (0, 0, 0)
