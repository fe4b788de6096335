"""Stop signals (SIGINT, SIGTERM) kept from the first moment of `python -m trainer`: one that arrives while the worker
still imports torch or opens the database is remembered even if a library swallows its KeyboardInterrupt, and the
next module imported raises it again, so the worker stops within its start-up instead of finishing it."""

import importlib.abc
import signal
import sys
import threading
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import FrameType, ModuleType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _StopAtNextImport(importlib.abc.MetaPathFinder):
    """First on `sys.meta_path` while start-up imports run: after a stop signal, every import raises
    KeyboardInterrupt, so a library that swallowed the first one (torch's import, in the worst case we saw) does
    not go on importing the rest of the stack for many seconds."""

    def __init__(self, stops: "StopSignals") -> None:
        self.stops = stops

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if self.stops.signum is not None:
            raise KeyboardInterrupt(f"stopped by signal {self.stops.signum} while importing {fullname}")
        return None  # not ours: the next finder imports it


class StopSignals:
    """Installed first thing; `event` is set by the first stop signal and stays set."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._finder = _StopAtNextImport(self)

    def install(self) -> "StopSignals":
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._stop)
        sys.meta_path.insert(0, self._finder)
        return self

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        self.signum = signum
        self.event.set()
        raise KeyboardInterrupt  # stop at once where nothing swallows it; `event` and the finder cover where it is

    def restore(self) -> None:
        """Give the signals back to the handlers they had before `install`, and imports back to Python."""
        if self._finder in sys.meta_path:
            sys.meta_path.remove(self._finder)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def release(self) -> None:
        """For a command that does not act on them: `restore`, and a stop that came meanwhile is raised again."""
        self.restore()
        if self.signum is not None:
            signal.raise_signal(self.signum)
