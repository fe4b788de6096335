"""The typed payload of each kind of job: what the web side writes into `jobs.payload` and the workers read back.

A payload is the whole contract between the two processes, so each kind has one frozen dataclass that writes it
(`to_json`) and reads it (`of(job)`, `from_json`). Reading tolerates payloads written by older versions: a missing
key gets the default the readers used before these classes existed."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from db.models import Job, JobKind, RetrainChoice

UNKNOWN_REQUESTER = "unknown"
"""Who asked for a job whose payload does not say (a score job, or one queued before jobs recorded it)."""


class _Payload:
    """What every payload class shares: the kind of job it belongs to, and reading it from a job of that kind."""

    KIND: ClassVar[JobKind]

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> Self:
        raise NotImplementedError

    @classmethod
    def of(cls, job: Job) -> Self:
        """The payload of a job of this kind (a job of another kind is a programming error)."""
        if job.kind != cls.KIND:
            raise ValueError(f"job {job.id} is a {job.kind.value} job, not a {cls.KIND.value} job")
        return cls.from_json(job.payload)


@dataclass(frozen=True)
class RetrainPayload(_Payload):
    """A retrain by the model worker (annotator.retraining.requests.request_retrain)."""

    KIND: ClassVar[JobKind] = JobKind.RETRAIN

    from_scratch: bool = False
    """Start a new adapter instead of resuming the current version's (LoRA only)."""
    requested_by: str = UNKNOWN_REQUESTER
    """The name of whoever asked."""
    backend: RetrainChoice = RetrainChoice.LORA
    """What to train; "auto" is resolved by the worker that takes the job. Jobs queued before there was a choice
    trained LoRA."""

    def to_json(self) -> dict[str, Any]:
        return {
            "from_scratch": self.from_scratch,
            "requested_by": self.requested_by,
            "backend": self.backend.value,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> Self:
        raw = raw or {}
        return cls(
            from_scratch=bool(raw.get("from_scratch", False)),
            requested_by=str(raw.get("requested_by", UNKNOWN_REQUESTER)),
            backend=RetrainChoice(raw.get("backend", RetrainChoice.LORA)),
        )


@dataclass(frozen=True)
class FastRetrainPayload(_Payload):
    """A fast-model retrain (annotator.retraining.requests.request_fast_retrain)."""

    KIND: ClassVar[JobKind] = JobKind.FAST_RETRAIN

    requested_by: str = UNKNOWN_REQUESTER
    """The name of whoever asked, or lingualoop's own reason ("automatic, after 20 new labels")."""

    def to_json(self) -> dict[str, Any]:
        return {"requested_by": self.requested_by}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> Self:
        return cls(requested_by=str((raw or {}).get("requested_by", UNKNOWN_REQUESTER)))


@dataclass(frozen=True)
class ScorePayload(_Payload):
    """Evaluate and score an imported version (annotator.retraining.requests.import_adapter)."""

    KIND: ClassVar[JobKind] = JobKind.SCORE

    model_version_id: int
    """The version to score. Every score job ever queued named it, so it has no default."""

    def to_json(self) -> dict[str, Any]:
        return {"model_version_id": self.model_version_id}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> Self:
        version = (raw or {}).get("model_version_id")
        if version is None:
            raise ValueError("a score job's payload names no model version")
        return cls(model_version_id=int(version))


@dataclass(frozen=True)
class LabelStudioSyncPayload(_Payload):
    """A Label Studio sync (annotator.jobloop.request_sync): the job's project is all it needs."""

    KIND: ClassVar[JobKind] = JobKind.LABELSTUDIO_SYNC

    def to_json(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> Self:
        return cls()


JobPayload = RetrainPayload | FastRetrainPayload | ScorePayload | LabelStudioSyncPayload


def payload_of(job: Job) -> JobPayload:
    """The job's payload, typed by its kind."""
    match job.kind:
        case JobKind.RETRAIN:
            return RetrainPayload.of(job)
        case JobKind.FAST_RETRAIN:
            return FastRetrainPayload.of(job)
        case JobKind.SCORE:
            return ScorePayload.of(job)
        case JobKind.LABELSTUDIO_SYNC:
            return LabelStudioSyncPayload.of(job)


def requested_by(job: Job) -> str:
    """Who asked for the job, for the notices and progress bars ("unknown" for kinds that do not record it)."""
    # By kind, not through payload_of: a progress bar must not fail on another kind's payload.
    match job.kind:
        case JobKind.RETRAIN:
            return RetrainPayload.of(job).requested_by
        case JobKind.FAST_RETRAIN:
            return FastRetrainPayload.of(job).requested_by
        case _:
            return UNKNOWN_REQUESTER
