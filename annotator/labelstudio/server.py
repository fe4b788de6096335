"""A local Label Studio server in its own virtual environment (it pins old versions of libraries we share), created
on first use: `label-studio start` with a known admin and API token, polled on /health at the exact port (it moves
to a free port silently when the one asked for is taken)."""

import os
import secrets
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from annotator.labelstudio.client import LabelStudioError
from core.files import write_secret
from core.progress import Log

ADMIN_EMAIL = "admin@lingualoop.local"


@dataclass(frozen=True)
class ServerSettings:
    venv: Path
    data_dir: Path
    port: int
    password: str
    token: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def credentials(folder: Path) -> tuple[str, str]:
    """The admin password and API token of the local server, made once and kept in a 0600 file."""
    path = folder / "credentials"
    if path.exists():
        password, token = path.read_text(encoding="utf-8").split()
        return password, token
    folder.mkdir(parents=True, exist_ok=True)
    password, token = secrets.token_urlsafe(12), secrets.token_hex(20)
    write_secret(path, f"{password}\n{token}\n")
    return password, token


LABEL_STUDIO_REQUIREMENTS = ("label-studio", "sentry-sdk<3")
"""What `ensure_installed` puts in Label Studio's venv. sentry-sdk 3.0 (2026-12) dropped an option that
label-studio 1.23 passes at start-up, so the server stopped while starting; label-studio does not cap it itself."""

REQUIREMENTS_FILE = "lingualoop-requirements.txt"


def ensure_installed(venv: Path, log: Log) -> Path:
    """The label-studio executable, installing `LABEL_STUDIO_REQUIREMENTS` into `venv` the first time, and again
    when they changed since (a few minutes, with pip's output)."""
    executable, installed = venv / "bin" / "label-studio", venv / REQUIREMENTS_FILE
    wanted = "\n".join(LABEL_STUDIO_REQUIREMENTS)
    if executable.exists() and installed.exists() and installed.read_text(encoding="utf-8") == wanted:
        return executable
    log(f"Installing Label Studio into {venv} (first use, or its requirements changed; a few minutes)...")
    if not (venv / "bin" / "pip").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    with subprocess.Popen(
        [str(venv / "bin" / "pip"), "install", "--progress-bar", "off", *LABEL_STUDIO_REQUIREMENTS],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as pip:
        assert pip.stdout is not None
        for line in pip.stdout:
            if line.startswith(("Collecting", "Successfully", "ERROR")):
                log("  " + line.rstrip()[:120])
    if pip.returncode != 0 or not executable.exists():
        raise LabelStudioError(f"Installing Label Studio failed (pip exit code {pip.returncode}).")
    installed.write_text(wanted, encoding="utf-8")
    return executable


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start(settings: ServerSettings, log: Log, timeout: float = 240) -> subprocess.Popen[bytes]:
    """Start the server and wait until it answers on its port."""
    executable = ensure_installed(settings.venv, log)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    env = os.environ | {
        "LABEL_STUDIO_USERNAME": ADMIN_EMAIL,
        "LABEL_STUDIO_PASSWORD": settings.password,
        "LABEL_STUDIO_USER_TOKEN": settings.token,
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
    }
    log(f"Starting Label Studio on {settings.url} (the first start takes about 40 s)...")
    with (settings.data_dir / "server.log").open("ab") as server_log:
        process = subprocess.Popen(
            [
                str(executable),
                "start",
                "--no-browser",
                "--internal-host",
                "127.0.0.1",
                "-p",
                str(settings.port),
                "--data-dir",
                str(settings.data_dir),
                "--enable-legacy-api-token",
            ],
            env=env,
            stdout=server_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while not healthy(settings.url):
        if process.poll() is not None:
            raise LabelStudioError(
                f"Label Studio stopped while starting; see {settings.data_dir / 'server.log'}."
            )
        if time.monotonic() > deadline:
            process.terminate()
            raise LabelStudioError(f"Label Studio did not answer on {settings.url} within {timeout:.0f} s.")
        time.sleep(0.5)
    return process
