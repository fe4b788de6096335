"""The shapes of the callbacks long work uses to say how far it has got, and how long it has left."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

Log = Callable[[str], None]
"""Called with one line for the person watching ("reading train.csv")."""

Report = Callable[[float, str], None]
"""Called as (fraction done from 0 to 1, what is happening now): a job's progress as the queue stores it."""

CountProgress = Callable[[int, int], None]
"""Called as (done, total) in one unit: posts scored, batches run."""

PhaseProgress = Callable[[str, int, int], None]
"""Called as (phase, done, total) for work in named phases, one progress bar per phase (an import)."""


def duration(seconds: float) -> str:
    """ "45 s", "3 min 05 s", "1 h 05 min"."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@dataclass
class Pace:
    """How long a counted piece of work has left at the rate it has kept since it started (a step, a post):
    measured, not guessed from the share of the whole job it stands for."""

    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def left(self, done: int, total: int) -> str:
        """ ", about 3 min 05 s left" after `done` of `total` units ("" before the first unit or once done)."""
        elapsed = self.clock() - self.started
        if done <= 0 or done >= total or elapsed <= 0:
            return ""
        return f", about {duration(elapsed * (total - done) / done)} left"
