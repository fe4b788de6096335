"""A project's label-quality settings (control posts, qualification, aggregation), typed and checked in one
place: the web side serves controls and qualification rounds by them, and the consensus (db/consensus.py), which
both the web side and the worker read, aggregates labels by them."""

import hashlib
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

AGGREGATIONS = ("reliability", "majority")
"""reliability: the Dawid-Skene posterior anchored on the controls (core/reliability.py); majority: plain vote."""


@dataclass(frozen=True)
class QualitySettings:
    controls_in_stream: bool = True
    """Mix control posts into annotators' streams (when the project has controls in their languages)."""
    control_rate_start: float = 0.2
    """Share of an annotator's first answers that are controls (1 in 5)."""
    control_start_answers: int = 20
    """How many first answers the start rate applies to."""
    control_rate: float = 0.05
    """Share of controls after that (1 in 20)."""
    qualification: bool = False
    """A new annotator of a language first answers controls only, and labels the corpus once they pass."""
    qualification_controls: int = 10
    qualification_threshold: float = 0.7
    """The share of a round's controls answered right that passes it."""
    aggregation: str = "reliability"
    model_votes: bool = True
    """The reliability model counts the fast model's cross-fitted votes on labelled pool posts as one more voter
    where two or more annotators answered (db.consensus; +1.8 points of right labels with a careful, a confused
    and a random annotator at overlap 3, docs/annotators.md). Off: the annotators' answers alone."""

    @staticmethod
    def of(stored: dict[str, Any] | None) -> "QualitySettings":
        """Settings from a project's `quality` JSON; missing keys take the defaults, unknown keys are ignored."""
        known = {f.name for f in fields(QualitySettings)}
        return replace(QualitySettings(), **{k: v for k, v in (stored or {}).items() if k in known})

    def problems(self) -> list[str]:
        """What is out of range, in a researcher's words (empty when the settings are fine)."""
        found = []
        for name, rate in (("start", self.control_rate_start), ("later", self.control_rate)):
            if not 0.0 < rate < 1.0:
                found.append(
                    f"The {name} control rate must be a share between 0 and 1 (0.2 is one post in five), "
                    f"not {rate}."
                )
        if not 0 <= self.control_start_answers <= 100_000:
            found.append("The number of first answers at the start rate must be between 0 and 100,000.")
        if not 1 <= self.qualification_controls <= 1_000:
            found.append("A qualification round must have between 1 and 1,000 control posts.")
        if not 0.0 <= self.qualification_threshold <= 1.0:
            found.append(
                f"The qualification threshold must be a share between 0 and 1 (0.7 is 70% right), "
                f"not {self.qualification_threshold}."
            )
        if self.aggregation not in AGGREGATIONS:
            found.append(f"Unknown aggregation '{self.aggregation}': use one of {', '.join(AGGREGATIONS)}.")
        return found

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def control_rate_after(self, answers_so_far: int) -> float:
        """The share of controls wanted for an annotator who has given `answers_so_far` answers."""
        return self.control_rate_start if answers_so_far < self.control_start_answers else self.control_rate


def control_due(settings: QualitySettings, user_key: str, answers_so_far: int) -> bool:
    """Whether an annotator's next post should be a control: a draw at the set rate that is the same every time
    it is asked for the same annotator and answer count (a page reload does not change it), and that no annotator
    can predict from the count alone."""
    if not settings.controls_in_stream:
        return False
    digest = hashlib.sha256(f"{user_key}:{answers_so_far}".encode()).digest()
    draw = int.from_bytes(digest[:8], "big") / 2**64
    return draw < settings.control_rate_after(answers_so_far)
