"""A real Label Studio server for the tests and bench/labelstudio.py: installed once into a cached virtual
environment (LINGUALOOP_LS_VENV, default ~/.cache/lingualoop/labelstudio-venv), started on a free port with a
fresh data folder."""

import contextlib
import os
import secrets
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

from annotator.labelstudio import server

VENV = Path(os.environ.get("LINGUALOOP_LS_VENV", Path.home() / ".cache" / "lingualoop" / "labelstudio-venv"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_labelstudio(folder: Path) -> Iterator[server.ServerSettings]:
    settings = server.ServerSettings(
        venv=VENV,
        data_dir=folder,
        port=_free_port(),
        password=secrets.token_urlsafe(10),
        token=secrets.token_hex(20),
    )
    process = server.start(settings, lambda line: print(line, flush=True))
    try:
        yield settings
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except Exception:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
