"""The shapes of the callbacks long work uses to say how far it has got."""

from collections.abc import Callable

Log = Callable[[str], None]
"""Called with one line for the person watching ("reading train.csv")."""

Report = Callable[[float, str], None]
"""Called as (fraction done from 0 to 1, what is happening now): a job's progress as the queue stores it."""

CountProgress = Callable[[int, int], None]
"""Called as (done, total) in one unit: posts scored, batches run."""

PhaseProgress = Callable[[str, int, int], None]
"""Called as (phase, done, total) for work in named phases, one progress bar per phase (an import)."""
