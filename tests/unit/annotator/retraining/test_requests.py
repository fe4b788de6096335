from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user
from annotator.errors import LingualoopError, PermissionDeniedError
from annotator.retraining.requests import (
    current_choice,
    export_adapter,
    job_timing,
    pin_version,
    request_retrain,
    set_retrain_backend,
)
from db.models import JobStatus, ModelStatus, ModelVersion, utcnow
from testing.factories import make_project


def test_one_queued_retrain_and_from_scratch_wins(session: Session) -> None:
    project = make_project(session)
    first = request_retrain(session, project, by=OPERATOR)
    again = request_retrain(session, project, from_scratch=True, by=OPERATOR)
    assert again.id == first.id
    assert again.payload == {
        "from_scratch": True,
        "requested_by": "operator",
        "backend": "auto",
    }  # a new project's
    assert request_retrain(session, project, by=OPERATOR).payload["from_scratch"] is True


def test_a_project_chooses_the_model_a_retrain_trains(session: Session) -> None:
    project = make_project(session)
    annotator = add_user(session, "ann", by=OPERATOR)
    with pytest.raises(PermissionDeniedError):
        set_retrain_backend(session, project, "encoder", by=annotator)
    with pytest.raises(LingualoopError, match="Unknown model 'bert': use one of auto, lora, encoder"):
        set_retrain_backend(session, project, "bert", by=OPERATOR)
    with pytest.raises(LingualoopError, match="Unknown model 'fast'"):  # the fast model is not the worker's
        request_retrain(session, project, backend="fast", by=OPERATOR)
    set_retrain_backend(session, project, "encoder", by=OPERATOR)
    encoder = request_retrain(session, project, by=OPERATOR)
    lora = request_retrain(session, project, backend="lora", by=OPERATOR)  # a one-off, besides the queued one
    assert (
        encoder.payload["backend"] == "encoder"
        and lora.payload["backend"] == "lora"
        and encoder.id != lora.id
    )
    assert request_retrain(session, project, by=OPERATOR).id == encoder.id  # one queued retrain per model
    set_retrain_backend(session, project, "auto", by=OPERATOR)
    auto = request_retrain(session, project, by=OPERATOR)  # the worker that takes it decides
    assert auto.payload["backend"] == "auto" and auto.id not in (encoder.id, lora.id)
    assert request_retrain(session, project, by=OPERATOR).id == auto.id


def test_a_researcher_pins_and_unpins_a_version(session: Session) -> None:
    project = make_project(session)
    versions = []
    for f1 in (0.7, 0.65, None):
        version = ModelVersion(
            project_id=project.id,
            backend="fast",
            base_model="e5",
            status=ModelStatus.READY if f1 is not None else ModelStatus.TRAINING,
            metrics={"all": {"macro_f1": f1, "macro_f1_ci95": [f1 - 0.1, f1 + 0.1]}} if f1 else {},
        )
        session.add(version)
        session.flush()
        versions.append(version.id)
    annotator = add_user(session, "ann", by=OPERATOR)
    with pytest.raises(PermissionDeniedError):
        pin_version(session, project, versions[0], by=annotator)
    with pytest.raises(LingualoopError, match="only a ready version can be pinned"):
        pin_version(session, project, versions[2], by=OPERATOR)
    current = pin_version(session, project, versions[0], by=OPERATOR)
    assert current is not None and current.id == versions[0] and current.pinned
    choice = current_choice(session, project)
    assert choice is not None and "pinned by a researcher" in choice.reason
    current = pin_version(session, project, None, by=OPERATOR)
    assert current is not None and current.id == versions[1]  # the newest: 0.65 is within 0.7's noise
    assert not any(session.get(ModelVersion, v).pinned for v in versions)  # type: ignore[union-attr]


def test_job_timing_says_who_asked_how_long_it_ran_and_what_is_left(session: Session) -> None:
    project = make_project(session)
    job = request_retrain(session, project, by=OPERATOR)
    assert job_timing(job, utcnow()).startswith("asked by operator at ")
    start = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    job.started_at, job.status, job.progress = start, JobStatus.RUNNING, 0.25
    timing = job_timing(job, start + timedelta(minutes=2))
    assert "started 10:00 · running for 2 min 00 s · about 6 min 00 s left" in timing
    job.finished_at, job.status = start + timedelta(hours=1, minutes=5), JobStatus.DONE
    assert job_timing(job, start).endswith("took 1 h 05 min")


def test_an_ensemble_has_no_files_to_export_and_says_which_to_export(
    session: Session, tmp_path: Path
) -> None:
    project = make_project(session)
    version = ModelVersion(
        project_id=project.id,
        backend="ensemble",
        base_model="average of versions 1 (fast), 2 (encoder)",
        status=ModelStatus.READY,
        training_snapshot={"members": [1, 2]},
    )
    session.add(version)
    session.flush()
    with pytest.raises(LingualoopError, match=r"export its members \(1, 2\) with --version"):
        export_adapter(session, project, tmp_path / "out", tmp_path, version.id, by=OPERATOR)
    assert not (tmp_path / "out").exists()
