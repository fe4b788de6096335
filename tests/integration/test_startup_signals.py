"""Ctrl-C during the first seconds of `lingualoop demo`: one SIGINT to the terminal's process group, while Streamlit
and the model worker (importing torch) are still starting, stops every process of the group."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

LINGUALOOP = str(Path(sys.executable).parent / "lingualoop")
STOP_WITHIN = 60
"""Seconds every process of the group has to end after the SIGINT."""

# A library that loses a KeyboardInterrupt while it imports (a broad `except`, or the interrupt landing in a
# finaliser, where Python prints it and goes on): here, torch's import takes 8 s and swallows interrupts.
SWALLOWING_IMPORT = """
import sys, time

class SlowTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            sys.meta_path.remove(self)
            print("importing torch", flush=True)
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                try:
                    time.sleep(0.1)
                except KeyboardInterrupt:
                    print("the import swallowed a KeyboardInterrupt", flush=True)
        return None

sys.meta_path.insert(0, SlowTorch())
"""


def _terminal_sigint() -> None:
    """In the child before exec: SIGINT as a terminal's job has it, also where this test run inherited it ignored
    (a shell's background job), which a child would inherit in turn and never see Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _alive_in_group(pgid: int) -> list[str]:
    """The processes of the group that are not zombies, as 'pid command' (read from /proc)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # it ended while we looked
            continue
        # The command name in parentheses may hold spaces: the fields that follow it are state, ppid, pgrp.
        state, _ppid, pgrp = stat[stat.rindex(")") + 2 :].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            alive.append(f"{entry.name} {command.strip()}")
    return alive


def _wait_for(log: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise AssertionError(f"no '{text}' within {timeout} s:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)


# 1 s (the children are starting) and while torch imports (the case that reproduced the bug); 3 s and 6 s were
# dropped to keep the suite under 30 minutes: they passed before the fix too, so they told nothing apart.
@pytest.mark.parametrize("after", [1.0, "while the worker imports torch"])
def test_one_sigint_during_startup_stops_every_process(tmp_path: Path, after: float | str) -> None:
    env = os.environ | {"LINGUALOOP_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    # The project exists, as on every run but the first: the children start within the first seconds.
    subprocess.run([LINGUALOOP, "demo", "--no-serve"], env=env, capture_output=True, check=True, timeout=300)
    if isinstance(after, str):
        (tmp_path / "site").mkdir()
        (tmp_path / "site" / "sitecustomize.py").write_text(SWALLOWING_IMPORT, encoding="utf-8")
        env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "site"), env.get("PYTHONPATH", "")])
    log_path = tmp_path / "demo.log"
    log = log_path.open("w")
    demo = subprocess.Popen(
        [LINGUALOOP, "demo", "--port", str(_free_port())],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, like a terminal's foreground job
        preexec_fn=_terminal_sigint,
    )
    pgid = demo.pid
    try:
        if isinstance(after, str):
            _wait_for(log_path, "importing torch", timeout=120)
        else:
            time.sleep(after)
        os.killpg(pgid, signal.SIGINT)  # what Ctrl-C does: every process of the group gets it
        # About 9 s here (the import above swallows 8); a process that missed the signal never ends, so a loaded
        # machine (CI once ran this suite at a third of the usual pace) gets room without the test telling less.
        deadline = time.monotonic() + STOP_WITHIN
        alive = _alive_in_group(pgid)
        while alive and time.monotonic() < deadline:
            demo.poll()  # reap the leader, so that it does not linger as a zombie
            time.sleep(0.25)
            alive = _alive_in_group(pgid)
        output = log_path.read_text(errors="replace")
        assert not alive, f"still running {STOP_WITHIN} s after SIGINT ({after}): {alive}\n{output}"
        if isinstance(after, str):
            assert "waiting for jobs" not in output  # the worker stopped before it served
    finally:
        with contextlib.suppress(ProcessLookupError):  # nothing left to kill
            os.killpg(pgid, signal.SIGKILL)
        demo.wait(timeout=10)
        log.close()
