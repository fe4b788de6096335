"""`python -m trainer ...`: the worker's own entry point (`lingualoop worker` and `lingualoop model prepare`
start it, so the web side never imports torch)."""

import signal
import sys

from trainer.stops import StopSignals

# Before anything else is imported: a Ctrl-C during the imports below (or torch's) must still stop the worker.
stops = StopSignals().install()

try:
    from trainer.cli import main
except KeyboardInterrupt:
    print("stopped during start-up", file=sys.stderr, flush=True)
    sys.exit(128 + (stops.signum or signal.SIGINT))  # the shell's code for a process ended by that signal

main(stops)
