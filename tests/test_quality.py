"""Lint, format, types and the import-linter layering contract, run as part of the suite (and so in CI)."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MYPY_COMMAND, MYPY_RUN

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("command", [("ruff", "check", "."), ("ruff", "format", "--check", ".")])
def test_ruff(command: tuple[str, ...]) -> None:
    result = _run(str(BIN / command[0]), *command[1:])
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_every_package(request: pytest.FixtureRequest) -> None:
    started = request.config.stash.get(MYPY_RUN, None)  # conftest started it when the tests were collected
    if started is None:
        result = _run(*MYPY_COMMAND)
        assert result.returncode == 0, result.stdout + result.stderr
        return
    process, output = started
    returncode = process.wait(timeout=1200)
    output.seek(0)
    assert returncode == 0, output.read().decode(errors="replace")


def test_import_layers() -> None:
    result = _run(str(BIN / "lint-imports"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 6 kept, 0 broken" in result.stdout


def test_streamlit_side_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys, app.cli, app.context, annotator.corpus.ingest, annotator.corpus.export, annotator.annotation.annotate, "
        "annotator.reports.dashboard, annotator.jobloop, annotator.labelstudio.sync; "
        "print(sorted(m for m in ('torch', 'transformers', 'peft', 'bitsandbytes', 'small_text', 'sklearn', "
        "'label_studio_sdk') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
