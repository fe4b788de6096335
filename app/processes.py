"""Child processes the CLI starts: the model worker (`python -m trainer`, so this process never imports torch)
and, for `lingualoop demo --serve`, Streamlit. Children die with their parent (PR_SET_DEATHSIG), so a
killed `lingualoop worker` never leaves an orphan training on; a stop signal reaches every child, even one that
comes while a child is still starting (StoppableChildren)."""

import ctypes
import functools
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from db.settings import Settings

_PR_SET_PDEATHSIG = 1
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _die_with_parent(parent: int) -> None:
    """Runs in the child before exec: the kernel kills it when `parent` ends, and if `parent` ended already (a
    Ctrl-C while it started this child), it goes now."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)


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
        list(command),
        env=child_env(settings) | (extra_env or {}),
        preexec_fn=functools.partial(_die_with_parent, os.getpid()),
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


class StoppableChildren:
    """The children of one command. Made before the first child starts, it catches SIGTERM and SIGINT from then on:
    a stop signal sets `stopping` and reaches every child (each gives its running job back), also a child that was
    being started when it came (between fork and exec a child loses a signal sent to its process group)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.processes: list[subprocess.Popen[bytes]] = []
        self.stopping = threading.Event()
        self._signum: int | None = None
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._forward)

    def _forward(self, signum: int, _frame: FrameType | None) -> None:
        self._signum = signum
        self.stopping.set()
        for child in self.processes:
            if child.poll() is None:
                child.send_signal(signum)

    def start(self, command: Sequence[str]) -> subprocess.Popen[bytes]:
        child = start(command, self.settings)
        self.processes.append(child)
        if self._signum is not None:  # the stop came while it started: it may not have seen it
            child.send_signal(self._signum)
        return child
