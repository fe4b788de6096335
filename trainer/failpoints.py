"""Crash points for the reliability tests: with LINGUALOOP_FAILPOINT=NAME in its environment the worker kills
itself with SIGKILL when it reaches `failpoint(NAME)`, the worst moment for a crash. Unset, a failpoint is one
dictionary lookup."""

import os
import signal


def failpoint(name: str) -> None:
    if os.environ.get("LINGUALOOP_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
