"""A model version's `training_snapshot` JSON, written and read in one place: the labels it learnt and how many
posts it trained on, the job that made it, an ensemble's members and pooling rule, the settings it trained
with, an imported adapter's lineage.

Its own module rather than part of db/versions.py (queries on sessions): this is a pure reading and writing of one
JSON column, like core.metrics.VersionMetrics for `metrics`, and db/jobs.py and db/ensemble.py need it without the
queries. The stored JSON keeps the keys and key order it always had, so existing databases read the same."""

import enum
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final

from core.ensemble_weights import LanguageWeights

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

UNRECORDED_POOLING = "arithmetic"
"""The rule of ensemble versions built before the rule was recorded: they averaged."""


@dataclass(frozen=True)
class TrainingSnapshot:
    """A version's `training_snapshot`, read by name. Every key is optional: an imported adapter records only its
    lineage, an ensemble no job, versions from before a key existed not that key."""

    raw: Mapping[str, Any] = field(default_factory=dict)

    @staticmethod
    def of(raw: Mapping[str, Any] | None) -> "TrainingSnapshot":
        return TrainingSnapshot(raw or {})

    @property
    def labels(self) -> dict[str, str] | None:
        """Item id (as a string, JSON's keys) -> the label the version learnt; None where none are recorded (an
        imported adapter), which a retrain treats as a version with no known labels."""
        labels = self.raw.get("labels")
        return None if labels is None else dict(labels)

    @property
    def label_count(self) -> int | None:
        """How many labels the version learnt (None where none are recorded)."""
        labels = self.raw.get("labels")
        return None if labels is None else len(labels)

    @property
    def trained_on(self) -> int | None:
        """Posts the version trained on (an ensemble: its largest member's)."""
        return self._int("trained_on")

    @property
    def new(self) -> int | None:
        """Posts whose label was new or changed since the parent version."""
        return self._int("new")

    @property
    def replayed(self) -> int | None:
        """Earlier labels trained on again beside the new ones (LoRA's replay; 0 for the encoder)."""
        return self._int("replayed")

    @property
    def warm_from(self) -> int | None:
        """The version an encoder round resumed (warm-started) from; None for a round trained from e5."""
        return self._int("warm_from")

    @property
    def full_at(self) -> int | None:
        """How many labels the encoder's last round from e5 (in this version's line) trained on; None before it was
        recorded."""
        return self._int("full_at")

    @property
    def eval_posts(self) -> int | None:
        """Labelled eval posts the version was evaluated on when it was trained."""
        return self._int("eval_posts")

    @property
    def job_id(self) -> int | None:
        """The job that trained the version (None outside a job, for ensembles and imports)."""
        return self._int("job_id")

    @property
    def aggregation(self) -> str | None:
        """How the consensus labels it trained on were aggregated (core.quality.AGGREGATIONS); None for versions
        trained before it was recorded (majority vote, then) and for those no round trained."""
        value = self.raw.get("aggregation")
        return None if value is None else str(value)

    @property
    def members(self) -> list[int]:
        """An ensemble's member versions (no other version has any)."""
        return [int(i) for i in self.raw.get("members", [])]

    @property
    def pooling(self) -> str:
        """The rule an ensemble pools its members' probabilities with (core.pooling)."""
        return str(self.raw.get("pooling", UNRECORDED_POOLING))

    @property
    def language_weights(self) -> LanguageWeights | None:
        """An ensemble's member weights by language (core.ensemble_weights); None before they existed."""
        raw = self.raw.get("weights")
        return None if raw is None else LanguageWeights.from_json(raw)

    def without_labels(self) -> dict[str, Any]:
        """Everything but the labels: what an exported adapter's card records of how it was trained."""
        return {key: value for key, value in self.raw.items() if key != "labels"}

    def _int(self, key: str) -> int | None:
        value = self.raw.get(key)
        return None if value is None else int(value)


class _Unset(enum.Enum):
    UNSET = enum.auto()


NO_JOB: Final = _Unset.UNSET
"""`job_id` for versions that no job trains (ensembles, imports): the key is left out, not written as null."""


def snapshot_json(
    *,
    members: Sequence[int] | None = None,
    labels: Mapping[str, str] | None = None,
    trained_on: int | None = None,
    new: int | None = None,
    replayed: int | None = None,
    eval_posts: int | None = None,
    job_id: int | _Unset | None = NO_JOB,
    pooling: str | None = None,
    settings: Mapping[str, Any] | None = None,
    lineage: Mapping[str, Any] | None = None,
    aggregation: str | None = None,
    warm_from: int | None = None,
    full_at: int | None = None,
    weights: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The `training_snapshot` of a new version: the parts given, in the order versions have always stored them
    (a None part is left out, except a job_id of None: a trained version records that no job trained it).
    `settings`: what it trained with, by name (settings_json); `lineage`: an imported adapter's origin;
    `aggregation`: how its consensus labels were reached (db.consensus); `warm_from` and `full_at`: an encoder
    round's parent when it resumed one, and the labels of the last round from e5; `weights`: an ensemble's
    weights by language (core.ensemble_weights.LanguageWeights.to_json)."""
    parts: dict[str, Any] = {
        "members": list(members) if members is not None else None,
        "labels": dict(labels) if labels is not None else None,
        "trained_on": trained_on,
        "new": new,
        "replayed": replayed,
        "eval_posts": eval_posts,
    }
    snapshot = {key: value for key, value in parts.items() if value is not None}
    if not isinstance(job_id, _Unset):
        snapshot["job_id"] = job_id
    if pooling is not None:
        snapshot["pooling"] = pooling
    if weights is not None:
        snapshot["weights"] = dict(weights)
    if aggregation is not None:
        snapshot["aggregation"] = aggregation
    if warm_from is not None:
        snapshot["warm_from"] = warm_from
    if full_at is not None:
        snapshot["full_at"] = full_at
    return snapshot | dict(settings or {}) | dict(lineage or {})


def settings_json(settings: "DataclassInstance") -> dict[str, Any]:
    """A settings dataclass as the snapshot stores it: its fields by name, tuples as lists (JSON's arrays)."""
    return {key: _json_value(value) for key, value in asdict(settings).items()}


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    return value
