"""Child processes the CLI starts: the model worker (`python -m trainer`, so this process never imports torch)
and, for `lingualoop demo --serve`, Streamlit. Children die with their parent (PR_SET_DEATHSIG), so a
killed `lingualoop worker` never leaves an orphan training on."""

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from db.settings import Settings

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def child_env(settings: Settings) -> dict[str, str]:
    """The database URL travels in the environment, not in the command line where `ps` would show it."""
    return os.environ | {
        "LINGUALOOP_DATABASE_URL": settings.database_url,
        "LINGUALOOP_DATA_DIR": str(settings.data_dir),
    }


def start(
    command: Sequence[str], settings: Settings, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        list(command), env=child_env(settings) | (extra_env or {}), preexec_fn=_die_with_parent
    )


def trainer_command(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "trainer", *args]


def streamlit_command(port: int) -> list[str]:
    main = Path(__file__).with_name("main.py")
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(main),
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "minimal",
        # Streamlit runs a full gc.collect() after every script run by default; with this app's heap that held
        # each answer's next post back by about 100 ms (bench/annotate.py: p50 196 -> 96 ms). Python's own
        # generational collector still runs.
        "--runner.postScriptGC",
        "false",
    ]


def forward_stop_signals(children: Sequence[subprocess.Popen[bytes]], on_stop: Callable[[], None]) -> None:
    """SIGTERM and SIGINT reach every child (each gives its running job back) and call `on_stop`."""

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)
        on_stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
