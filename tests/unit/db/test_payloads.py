"""Job payloads: each kind's typed payload round-trips through the jobs table, payloads written before a key
existed read with the defaults the workers used, and a payload of one kind is refused for another."""

import pytest
from sqlalchemy.orm import Session

from db.jobs import enqueue
from db.models import Job, JobKind, RetrainChoice
from db.payloads import (
    FastRetrainPayload,
    LabelStudioSyncPayload,
    RetrainPayload,
    ScorePayload,
    payload_of,
    requested_by,
)

PAYLOADS = [
    RetrainPayload(from_scratch=True, requested_by="ana", backend=RetrainChoice.ENCODER),
    FastRetrainPayload(requested_by="automatic, after 20 new labels"),
    ScorePayload(model_version_id=7),
    LabelStudioSyncPayload(),
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: type(p).__name__)
def test_a_payload_round_trips_through_the_jobs_table(session: Session, payload: object) -> None:
    assert isinstance(payload, RetrainPayload | FastRetrainPayload | ScorePayload | LabelStudioSyncPayload)
    job = enqueue(session, payload.KIND, payload=payload)
    session.flush()
    session.expire(job)  # read back what the database stored, not the object we gave it
    assert payload_of(job) == payload
    assert type(payload).from_json(payload.to_json()) == payload


def test_the_stored_json_keeps_its_keys() -> None:
    """Workers of the previous release read these very keys from jobs queued by this one."""
    assert RetrainPayload(requested_by="ana", backend=RetrainChoice.AUTO).to_json() == {
        "from_scratch": False,
        "requested_by": "ana",
        "backend": "auto",
    }
    assert FastRetrainPayload("ana").to_json() == {"requested_by": "ana"}
    assert ScorePayload(3).to_json() == {"model_version_id": 3}
    assert LabelStudioSyncPayload().to_json() == {}


def test_payloads_of_older_versions_read_with_the_old_defaults() -> None:
    # Retrain jobs queued before the backend choice (and before who asked was recorded) trained LoRA.
    assert RetrainPayload.from_json({}) == RetrainPayload(False, "unknown", RetrainChoice.LORA)
    assert RetrainPayload.from_json({"from_scratch": True}).from_scratch is True
    assert RetrainPayload.from_json(None).backend == RetrainChoice.LORA
    assert FastRetrainPayload.from_json({}).requested_by == "unknown"
    assert ScorePayload.from_json({"model_version_id": "12"}).model_version_id == 12
    with pytest.raises(ValueError, match="names no model version"):
        ScorePayload.from_json({})


def test_who_asked_reads_the_kinds_that_record_it(session: Session) -> None:
    retrain = enqueue(session, JobKind.RETRAIN, payload=RetrainPayload(requested_by="ana"))
    fast = enqueue(session, JobKind.FAST_RETRAIN, payload=FastRetrainPayload("bo"))
    score = enqueue(session, JobKind.SCORE, payload=ScorePayload(1))
    old = enqueue(session, JobKind.FAST_RETRAIN, payload={})
    assert [requested_by(j) for j in (retrain, fast, score, old)] == ["ana", "bo", "unknown", "unknown"]


def test_a_payload_belongs_to_its_kind(session: Session) -> None:
    with pytest.raises(ValueError, match="ScorePayload is no payload for a retrain job"):
        enqueue(session, JobKind.RETRAIN, payload=ScorePayload(1))
    job = Job(id=5, kind=JobKind.SCORE, payload={"model_version_id": 1})
    with pytest.raises(ValueError, match="job 5 is a score job, not a retrain job"):
        RetrainPayload.of(job)


def test_enqueue_still_takes_a_payloads_json(session: Session) -> None:
    job = enqueue(session, JobKind.RETRAIN, payload={"from_scratch": True})
    assert RetrainPayload.of(job) == RetrainPayload(from_scratch=True)
