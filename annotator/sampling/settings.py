"""A project's sampling settings, typed: one set of defaults, read from and written to `projects.sampling` (JSON),
validated in one place. The sampler, the fast model, the Sampling page and the CLI all read them through here."""

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from sqlalchemy.orm import Session

from annotator.accounts.access import RESEARCHERS, Actor, require_role
from annotator.errors import LingualoopError
from annotator.sampling.strategies import DEFAULT_STRATEGY, STRATEGIES
from db.models import Project

QUOTA_MODES = ("catch_up", "weighted")


@dataclass(frozen=True)
class SamplingSettings:
    strategy: str = DEFAULT_STRATEGY
    """A versioned strategy name (annotator/sampling/strategies.py)."""
    quota_mode: str = "catch_up"
    """catch_up: quotas only for languages with fewer than `catch_up` labels, the rest one language-blind
    ranking; weighted: every batch split over all languages by how weak the model is there."""
    catch_up: int = 30
    """Labels per language after which its quota fades out (the best of 20-50 in the simulations)."""
    catch_up_share: float = 0.5
    """The most of a batch that catch-up quotas may take."""
    ceiling_share: float = 0.5
    """The most of a batch that one language may take."""
    random_share: float = 0.2
    """Share of each language's quota drawn at random (guards against sampling bias)."""
    favour: tuple[str, ...] = ()
    """Languages a researcher asked more posts for (double weight in the quotas)."""
    fast_every: int = 25
    """New labels after which the fast model retrains by itself (0: never)."""

    @staticmethod
    def of(project: Project) -> "SamplingSettings":
        """The project's settings; keys it does not have take the defaults, unknown keys are ignored."""
        stored = project.sampling or {}
        known = {f.name for f in fields(SamplingSettings)}
        values: dict[str, Any] = {key: value for key, value in stored.items() if key in known}
        if "favour" in values:
            values["favour"] = tuple(values["favour"] or ())
        return replace(SamplingSettings(), **values)

    def check(self, languages: list[str]) -> "SamplingSettings":
        """Raise LingualoopError with a researcher's message for anything out of range; returns self."""
        if self.strategy not in STRATEGIES:
            raise LingualoopError(
                f"Unknown sampling strategy '{self.strategy}': use one of {', '.join(STRATEGIES)}."
            )
        if self.quota_mode not in QUOTA_MODES:
            raise LingualoopError(
                f"Unknown quota mode '{self.quota_mode}': use one of {', '.join(QUOTA_MODES)}."
            )
        if not 0.0 <= self.random_share <= 1.0:
            raise LingualoopError("The random share must be between 0 and 1.")
        if not 1 <= self.catch_up <= 10_000:
            raise LingualoopError("The catch-up target must be between 1 and 10,000 labels per language.")
        if not (0.0 < self.catch_up_share <= 1.0 and 0.0 < self.ceiling_share <= 1.0):
            raise LingualoopError("The catch-up and ceiling shares must be above 0 and at most 1.")
        if self.fast_every < 0:
            raise LingualoopError("The fast model's retrain interval cannot be negative (0 turns it off).")
        unknown = sorted(set(self.favour) - set(languages))
        if unknown:
            raise LingualoopError(f"Not languages of this project: {', '.join(unknown)}.")
        return self

    def as_json(self) -> dict[str, Any]:
        values = asdict(self)
        values["favour"] = sorted(self.favour)
        return values


def update_sampling(
    session: Session, project: Project, by: Actor, settings: SamplingSettings, *, overlap: int
) -> None:
    """Change how the next batches are chosen; queued posts stay queued."""
    require_role(by, RESEARCHERS, "change the sampling settings")
    if not 1 <= overlap <= 10:
        raise LingualoopError("Annotations wanted per post must be between 1 and 10.")
    project.sampling = {**(project.sampling or {}), **settings.check(list(project.languages)).as_json()}
    project.overlap = overlap
    session.flush()
