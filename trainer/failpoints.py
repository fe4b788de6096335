"""Crash points for the reliability tests: with LINGUALOOP_FAILPOINT=NAME in its environment the worker kills
itself with SIGKILL when it reaches `failpoint(NAME)`, the worst moment for a crash. With
LINGUALOOP_FAILPOINT_ONCE=PATH as well, only the first process to reach it dies (it creates PATH first), so a
retried task can then succeed. Unset, a failpoint is one dictionary lookup."""

import os
import signal


def failpoint(name: str) -> None:
    if os.environ.get("LINGUALOOP_FAILPOINT") != name:
        return
    once = os.environ.get("LINGUALOOP_FAILPOINT_ONCE")
    if once:
        try:
            os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    os.kill(os.getpid(), signal.SIGKILL)
