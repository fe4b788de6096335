"""The retrain job: freeze a snapshot of the consensus labels, resume the parent adapter (or start one), train,
evaluate per language on the eval split, save the adapter, score the pool, then mark the version ready (and
current, if db.versions.choose_current picks it) in one transaction. A failure leaves the previous version current."""

import random
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from core.labels import LABELS
from core.progress import Pace
from db.consensus import aggregation_of
from db.engine import session_scope
from db.models import (
    Backend,
    ModelStatus,
    ModelVersion,
    Prediction,
    Split,
)
from db.snapshots import TrainingSnapshot, settings_json, snapshot_json
from db.versions import (
    LabelledPost,
    consensus_posts,
    current_version,
    latest_ready_version,
    version_folder,
)
from trainer.config import WorkerSettings
from trainer.label_tokens import score_texts
from trainer.lora_training import train_adapter
from trainer.modeling import LoadedModel, load_model, merged_for_scoring, save_adapter
from trainer.pool_scoring import ScoreTexts
from trainer.publish import Report, mark_failed, publish
from trainer.rounds import TRAINED_AT, Train, Trained, choose_training_set, run_round
from trainer.version_scorers import VersionSpec


def _stepping(report: Report, start: float, end: float, steps: int = 6) -> Callable[[str], None]:
    """A log callback for model loading that moves the bar a step per message (converting the packaged Gemma
    takes a few messages and a couple of minutes the first time), never past `end`."""
    seen = 0

    def log(message: str) -> None:
        nonlocal seen
        seen += 1
        report(start + (end - start) * min(seen, steps) / (steps + 1), message)

    return log


def lora_texts(loaded: LoadedModel, batch_size: int) -> ScoreTexts:
    """The LoRA model (merged for scoring) as the worker scores with it."""
    return lambda texts, report: score_texts(loaded, texts, batch_size, report)


def run_retrain(
    sessions: sessionmaker[Session],
    settings: WorkerSettings,
    project_id: int,
    report: Report,
    *,
    from_scratch: bool = False,
    job_id: int | None = None,
) -> int:
    """Train a new version for the project; returns its id. Raises NothingToTrain when there is nothing new."""

    def plan(
        session: Session, train_posts: list[LabelledPost], eval_posts: list[LabelledPost]
    ) -> tuple[ModelVersion, Train]:
        parent = None if from_scratch else current_version(session, project_id)
        if (
            parent is not None and parent.backend != Backend.LORA
        ):  # the fast model is current: resume the newest LoRA
            parent = latest_ready_version(session, project_id, Backend.LORA)
        parent_adapter = version_folder(settings.data_dir, parent) if parent is not None else None
        if parent is not None and (parent_adapter is None or not parent_adapter.exists()):
            parent, parent_adapter = None, None  # its adapter is gone: start a new adapter
        parent_snapshot = TrainingSnapshot.of(parent.training_snapshot).labels if parent is not None else None
        chosen, new_count, replayed = choose_training_set(
            train_posts, parent_snapshot, settings.train.replay_ratio, settings.train.seed
        )
        if settings.train.max_examples is not None:
            chosen = random.Random(settings.train.seed).sample(
                chosen, min(len(chosen), settings.train.max_examples)
            )
        # What this version has learnt: its parent's labels plus the ones trained on now (a capped round leaves
        # the rest for the next round to count as new).
        snapshot = dict(parent_snapshot or {}) | {str(p.item_id): p.label for p in chosen}
        version = ModelVersion(
            project_id=project_id,
            parent_id=parent.id if parent else None,
            backend=Backend.LORA,
            base_model=settings.model.base_model,
            status=ModelStatus.TRAINING,
            training_snapshot=snapshot_json(
                labels=snapshot,
                trained_on=len(chosen),
                new=new_count,
                replayed=replayed,
                eval_posts=len(eval_posts),
                job_id=job_id,
                settings={"lora": settings_json(settings.lora), "train": settings_json(settings.train)},
                aggregation=aggregation_of(session, project_id),
            ),
        )
        parent_id = parent.id if parent else None
        return version, lambda version_id, folder: _train_lora(
            settings, report, chosen, parent_id, parent_adapter, version_id, folder
        )

    return run_round(sessions, settings, project_id, report, plan, job_id=job_id)


def _train_lora(
    settings: WorkerSettings,
    report: Report,
    chosen: list[LabelledPost],
    parent_id: int | None,
    parent_adapter: Path | None,
    version_id: int,
    folder: Path,
) -> Trained:
    """Resume the parent's adapter (or start one), train it on the chosen posts and save it in `folder`."""
    report(0.02, "loading the model" + (f" and resuming version {parent_id}'s adapter" if parent_id else ""))
    loaded = load_model(
        settings.model,
        settings.lora,
        settings.models_dir,
        max_post_tokens=settings.train.max_post_tokens,
        adapter=parent_adapter,
        seed=settings.train.seed,
        log=_stepping(report, 0.02, 0.1),
    )
    pace = Pace()
    result = train_adapter(
        loaded,
        [p.text for p in chosen],
        [LABELS.index(p.label) for p in chosen],
        settings.train,
        on_step=lambda step, total, loss: report(
            0.1 + (TRAINED_AT - 0.1) * step / total,
            f"training: step {step}/{total}, loss {loss:.3f}{pace.left(step, total)}",
        ),
        languages=[p.language for p in chosen],
        confidences=[p.weight for p in chosen],
    )
    save_adapter(loaded, folder, {"model_version": version_id, "parent": parent_id})
    return Trained(lora_texts(merged_for_scoring(loaded), settings.model.score_batch_size), result.summary())


def run_score(
    sessions: sessionmaker[Session], settings: WorkerSettings, version_id: int, report: Report
) -> int:
    """Evaluate an imported adapter and score the pool with it, then mark it ready (and current if best)."""
    with session_scope(sessions) as session:
        version = session.get(ModelVersion, version_id)
        adapter = version_folder(settings.data_dir, version) if version is not None else None
        if version is None or adapter is None:
            raise ValueError(f"model version {version_id} has no adapter to score with")
        project_id, base_model = version.project_id, version.base_model
        eval_posts = consensus_posts(session, project_id, Split.EVAL)
        # A retry after a killed attempt starts over: no half-written predictions, not failed any more.
        session.execute(delete(Prediction).where(Prediction.model_version_id == version_id))
        version.status, version.error = ModelStatus.SCORING, None
    try:
        report(0.02, f"loading {base_model} with the adapter of version {version_id}")
        model_settings = replace(settings.model, base_model=base_model)
        loaded = load_model(
            model_settings,
            settings.lora,
            settings.models_dir,
            max_post_tokens=settings.train.max_post_tokens,
            adapter=adapter,
            trainable=False,
            log=_stepping(report, 0.02, 0.1),
        )
        spec = VersionSpec(version_id, project_id, Backend.LORA, base_model, str(adapter))
        publish(
            sessions,
            settings,
            lora_texts(merged_for_scoring(loaded), settings.model.score_batch_size),
            spec,
            eval_posts,
            report,
            0.1,
        )
        return version_id
    except BaseException as error:
        mark_failed(sessions, version_id, f"{type(error).__name__}: {error}")
        raise
