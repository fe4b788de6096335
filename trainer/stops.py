"""Stop signals (SIGINT, SIGTERM) kept from the first moment of `python -m trainer`: one that arrives while the worker
still imports torch or opens the database is remembered even if a library swallows its KeyboardInterrupt, so the
worker stops before it serves a job instead of running on."""

import signal
import threading
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Installed first thing; `event` is set by the first stop signal and stays set."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> "StopSignals":
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._stop)
        return self

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        self.signum = signum
        self.event.set()
        raise KeyboardInterrupt  # stop at once where nothing swallows it; `event` covers where something does

    def restore(self) -> None:
        """Give the signals back to the handlers they had before `install`."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def release(self) -> None:
        """For a command that does not act on them: `restore`, and a stop that came meanwhile is raised again."""
        self.restore()
        if self.signum is not None:
            signal.raise_signal(self.signum)
