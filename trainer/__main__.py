"""`python -m trainer ...`: the worker's own entry point (`lingualoop worker` and `lingualoop model prepare`
start it, so the web side never imports torch)."""

from trainer.stops import StopSignals

# Before anything else is imported: a Ctrl-C during the imports below (or torch's) must still stop the worker.
stops = StopSignals().install()

from trainer.cli import main  # noqa: E402 (after the signals, on purpose)

main(stops)
