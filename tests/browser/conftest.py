"""Browser tests need Debian's chromium and the Noto fonts (every script must render): installed here with apt
on first use when the tests run as root, as on CI; elsewhere the tests are skipped (failed in strict mode)."""

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testing.browser import browser_page, chromium_available
from tests.conftest import skip_or_fail

PACKAGES = ["chromium", "fonts-noto-core", "fonts-noto-color-emoji"]


def _install_chromium() -> str | None:
    """None when chromium is there (installed now if need be), else why not."""
    if chromium_available():
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "chromium is not installed (apt-get install " + " ".join(PACKAGES) + ")"
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    with open("/tmp/lingualoop-apt.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if chromium_available():
            return None
        install = ["apt-get", "install", "-y", "-q", *PACKAGES]  # as installed and checked on these machines
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
            done = subprocess.run(install, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                return f"apt-get could not install chromium: {done.stderr[-500:]}"
    return None if chromium_available() else "chromium is still missing after apt-get"


@pytest.fixture(scope="session")
def chromium() -> None:
    reason = _install_chromium()
    if reason is not None:
        skip_or_fail(reason)


@pytest.fixture
def page(chromium: None) -> Iterator[Any]:
    with browser_page() as opened:
        yield opened


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    """Where screenshots go: docs/screenshots with LINGUALOOP_SCREENSHOTS=1, else the test's folder."""
    if os.environ.get("LINGUALOOP_SCREENSHOTS") == "1":
        folder = Path(__file__).parents[2] / "docs" / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path
