"""Typed SQLAlchemy 2 models: the whole data model (projects, posts, users, annotations, model versions, jobs)."""

import enum
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.labels import DEFAULT_LABEL_NAMES, LABELS

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes (stored in UTC); PostgreSQL aware ones: the same aware moment for both."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads it as a class attribute)
        dict[str, Any]: JSON,
        list[str]: JSON,
        datetime: DateTime(timezone=True),
    }


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    """A portable enum: VARCHAR plus a named CHECK constraint, the same on SQLite and PostgreSQL."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Split(enum.StrEnum):
    POOL = "pool"
    EVAL = "eval"


class LanguageSource(enum.StrEnum):
    GIVEN = "given"
    DETECTED = "detected"


class Role(enum.StrEnum):
    ANNOTATOR = "annotator"
    RESEARCHER = "researcher"
    ADMIN = "admin"


class AnnotationKind(enum.StrEnum):
    LABEL = "label"
    SKIP = "skip"
    FLAG = "flag"


class AnnotationSource(enum.StrEnum):
    APP = "app"
    LABELSTUDIO = "labelstudio"
    IMPORT = "import"


class EventAction(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class FlagDecision(enum.StrEnum):
    """A researcher's decision on a flagged post."""

    RETURNED = "returned"
    """Back to the pool: annotators are served it again (a later flag opens a new review)."""
    EXCLUDED = "excluded"
    """Out of the corpus: never sampled, served or trained on; the export marks it."""
    RELABELLED = "relabelled"
    """The researcher gave it its label (an adjudication): kept, not served again."""


class Backend(enum.StrEnum):
    """What kind of model a version is. Stored as plain text (no CHECK constraint), so that a new backend needs
    an entry here, not a migration."""

    LORA = "lora"
    """The study's LoRA-tuned causal LM (Gemma-3-270M on CPU, Llama-3.2-3B 4-bit on a GPU), trained by the worker."""
    FAST = "fast"
    """Frozen multilingual-e5-small embeddings + logistic regression, trained by the web side's job loop."""
    ENCODER = "encoder"
    """multilingual-e5-small fine-tuned end to end with a classification head, trained by the worker."""
    ENSEMBLE = "ensemble"
    """The newest fast, LoRA and encoder versions' calibrated probabilities pooled with weights by language
    (db/ensemble.py)."""


class RetrainChoice(enum.StrEnum):
    """What a project's Retrain trains (`projects.retrain_backend`, and a retrain job's payload "backend")."""

    AUTO = "auto"
    """The worker decides by what it runs on: the encoder on a CPU worker whose LoRA base would be the packaged
    Gemma-3-270M (the encoder measured better there on the under-represented languages, docs/experiment.md),
    LoRA where the worker has a GPU or was given a base model (the study's Llama-3.2-3B)."""
    LORA = "lora"
    ENCODER = "encoder"


class ModelStatus(enum.StrEnum):
    TRAINING = "training"
    SCORING = "scoring"
    READY = "ready"
    FAILED = "failed"


class JobKind(enum.StrEnum):
    RETRAIN = "retrain"
    SCORE = "score"
    FAST_RETRAIN = "fast_retrain"
    LABELSTUDIO_SYNC = "labelstudio_sync"


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    label_names: Mapped[dict[str, Any]] = mapped_column(default=lambda: dict(DEFAULT_LABEL_NAMES))
    guidelines: Mapped[str] = mapped_column(Text, default="")
    languages: Mapped[list[str]] = mapped_column(default=list)
    overlap: Mapped[int] = mapped_column(Integer, default=1)
    sampling: Mapped[dict[str, Any]] = mapped_column(default=dict)
    quality: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    """Controls, qualification and aggregation settings (core/quality.QualitySettings, as JSON)."""
    retrain_backend: Mapped[str] = mapped_column(
        String(32), default=RetrainChoice.AUTO.value, server_default=RetrainChoice.LORA.value
    )
    """What Retrain trains (a RetrainChoice): new projects "auto"; the server default "lora" is what migration
    0006 gave the projects that existed before the choice did, so they kept the model they had."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (CheckConstraint("overlap >= 1", name="overlap_positive"),)


class ImportRun(Base):
    """One import of a file: provenance for every post and label it brought."""

    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(500))
    file_format: Mapped[str] = mapped_column(String(16))
    split: Mapped[Split] = mapped_column(_enum(Split, "import_split"))
    rows_read: Mapped[int] = mapped_column(default=0)
    posts_added: Mapped[int] = mapped_column(default=0)
    duplicates: Mapped[int] = mapped_column(default=0)
    labels_added: Mapped[int] = mapped_column(default=0)
    languages_detected: Mapped[int] = mapped_column(default=0)
    rows_skipped: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Item(Base):
    """A post to label."""

    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))
    language_source: Mapped[LanguageSource] = mapped_column(_enum(LanguageSource, "language_source"))
    language_confidence: Mapped[float | None] = mapped_column(Float)
    text_hash: Mapped[str] = mapped_column(String(32))
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    split: Mapped[Split] = mapped_column(_enum(Split, "item_split"), default=Split.POOL)
    duplicates: Mapped[int] = mapped_column(default=0)
    """How many further copies (same normalised text) were collapsed into this post."""
    import_id: Mapped[int | None] = mapped_column(ForeignKey("imports.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("project_id", "external_id", name="uq_items_project_external_id"),
        UniqueConstraint("project_id", "text_hash", name="uq_items_project_text_hash"),
        Index("ix_items_project_split_language", "project_id", "split", "language"),
    )


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    """None for accounts that cannot log in (such as the user that imported labels belong to)."""
    role: Mapped[Role] = mapped_column(_enum(Role, "user_role"), default=Role.ANNOTATOR)
    languages: Mapped[list[str]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Assignment(Base):
    """A post leased to an annotator until a time, so concurrent annotators never collide."""

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    leased_until: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("item_id", "user_id", name="uq_assignments_item_user"),)


class SamplingBatch(Base):
    """One batch the sampler chose: why each queued post was asked for can be traced to its batch."""

    __tablename__ = "sampling_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    strategy: Mapped[str] = mapped_column(String(64))
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    size: Mapped[int] = mapped_column(default=0)
    per_language: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Posts chosen per language, and how many of them by the random share."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QueueEntry(Base):
    """A post waiting to be served to annotators, in the order the sampler ranked it."""

    __tablename__ = "queue_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    batch_id: Mapped[int] = mapped_column(ForeignKey("sampling_batches.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int] = mapped_column(default=0)
    reason: Mapped[str] = mapped_column(String(32), default="")
    """'uncertain', 'random' or 'cold start'."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("project_id", "item_id", name="uq_queue_entries_project_item"),
        Index("ix_queue_entries_project_batch_rank", "project_id", "batch_id", "rank"),
    )


class Annotation(Base):
    """The current answer of one user for one post; its history lives in annotation_events."""

    __tablename__ = "annotations"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[AnnotationKind] = mapped_column(_enum(AnnotationKind, "annotation_kind"))
    label: Mapped[str | None] = mapped_column(String(16))
    flag_reason: Mapped[str | None] = mapped_column(Text)
    source: Mapped[AnnotationSource] = mapped_column(_enum(AnnotationSource, "annotation_source"))
    external_ref: Mapped[str | None] = mapped_column(String(64))
    """The id of this answer in another tool (a Label Studio annotation id)."""
    seconds: Mapped[float | None] = mapped_column(Float)
    guideline_id: Mapped[int | None] = mapped_column(ForeignKey("guidelines.id", ondelete="SET NULL"))
    """The guideline version the annotator was shown when answering (None: before guidelines were versioned)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("item_id", "user_id", name="uq_annotations_item_user"),
        UniqueConstraint("source", "external_ref", name="uq_annotations_source_external_ref"),
        CheckConstraint(
            "(kind = 'label' AND label IS NOT NULL AND label IN ("
            + ", ".join(f"'{label}'" for label in LABELS)
            + "))"
            " OR (kind != 'label' AND label IS NULL)",
            name="label_matches_kind",
        ),
    )


class AnnotationEvent(Base):
    """Append-only history of every answer, correction and removal: nothing is ever lost."""

    __tablename__ = "annotation_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    action: Mapped[EventAction] = mapped_column(_enum(EventAction, "event_action"))
    kind: Mapped[AnnotationKind] = mapped_column(_enum(AnnotationKind, "event_kind"))
    label: Mapped[str | None] = mapped_column(String(16))
    flag_reason: Mapped[str | None] = mapped_column(Text)
    source: Mapped[AnnotationSource] = mapped_column(_enum(AnnotationSource, "event_source"))
    seconds: Mapped[float | None] = mapped_column(Float)
    guideline_id: Mapped[int | None] = mapped_column(ForeignKey("guidelines.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Adjudication(Base):
    """The final label of a post whose annotators disagree, and who decided."""

    __tablename__ = "adjudications"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), unique=True)
    label: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("label IN (" + ", ".join(f"'{label}'" for label in LABELS) + ")", name="label_known"),
    )


class FlagReview(Base):
    """A researcher's decision on a flagged post. The flags themselves stay in `annotations` (and their history),
    so a review never loses who flagged and why; a flag newer than the review makes the post pending again."""

    __tablename__ = "flag_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), unique=True)
    decision: Mapped[FlagDecision] = mapped_column(_enum(FlagDecision, "flag_decision"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ControlSource(enum.StrEnum):
    """Where a control post's gold label came from."""

    MANUAL = "manual"
    ADJUDICATION = "adjudication"
    FLAG = "flag"
    IMPORT = "import"
    EVAL = "eval"


class ControlPost(Base):
    """A post with a known (gold) label, mixed into annotators' streams to score them. Answers on it are stored
    as annotations like any other but never count as labels of the corpus: the post's label is the gold one.
    Unmarking keeps the row (active false), so the scores made with it stay explainable."""

    __tablename__ = "control_posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), unique=True)
    label: Mapped[str] = mapped_column(String(16))
    source: Mapped[ControlSource] = mapped_column(_enum(ControlSource, "control_source"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    """Who marked it (None: the operator, from the command line)."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("label IN (" + ", ".join(f"'{label}'" for label in LABELS) + ")", name="label_known"),
    )


class Guideline(Base):
    """One version of a project's guideline: the project's own (language "") or its translation for one
    language. Versions only grow; each answer stores the one its annotator was shown."""

    __tablename__ = "guidelines"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    language: Mapped[str] = mapped_column(String(8), default="")
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("project_id", "language", "version", name="uq_guidelines_project_language_version"),
    )


class AnnotatorExclusion(Base):
    """An annotator whose labels a researcher left out of training and consensus. Lifting it sets lifted_at:
    the labels were never deleted, and the history of who excluded whom stays."""

    __tablename__ = "annotator_exclusions"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    note: Mapped[str] = mapped_column(Text, default="")
    excluded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    lifted_at: Mapped[datetime | None]
    lifted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    __table_args__ = (
        # At most one standing exclusion per annotator and project.
        Index(
            "uq_annotator_exclusions_standing",
            "project_id",
            "user_id",
            unique=True,
            sqlite_where=text("lifted_at IS NULL"),
            postgresql_where=text("lifted_at IS NULL"),
        ),
    )


class Qualification(Base):
    """An annotator's qualification round in one language of a project: the controls answered since
    `started_at` are the attempt's; passing (or a researcher's admission) is recorded once and kept."""

    __tablename__ = "qualifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    language: Mapped[str] = mapped_column(String(8))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    passed_at: Mapped[datetime | None]
    admitted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    """Set when a researcher admitted the annotator by hand (passed_at is set too)."""

    __table_args__ = (
        UniqueConstraint("project_id", "user_id", "language", name="uq_qualifications_project_user_language"),
    )


class ModelVersion(Base):
    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    backend: Mapped[str] = mapped_column(String(32))
    """A Backend value."""
    base_model: Mapped[str] = mapped_column(String(500))
    adapter_path: Mapped[str | None] = mapped_column(String(1000))
    training_snapshot: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[ModelStatus] = mapped_column(
        _enum(ModelStatus, "model_status"), default=ModelStatus.TRAINING
    )
    is_current: Mapped[bool] = mapped_column(Boolean, default=False)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        # At most one current version per project.
        Index(
            "uq_model_versions_one_current",
            "project_id",
            unique=True,
            sqlite_where=text("is_current"),
            postgresql_where=text("is_current"),
        ),
    )


class Prediction(Base):
    """The four probabilities of one model version for one post, columns in label order."""

    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    p_pro: Mapped[float] = mapped_column(Float)
    p_anti: Mapped[float] = mapped_column(Float)
    p_neutral: Mapped[float] = mapped_column(Float)
    p_unrelated: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    """The highest probability (least-confidence sampling asks for the lowest first)."""
    margin: Mapped[float] = mapped_column(Float)
    """Best minus second-best probability (breaking-ties sampling asks for the smallest first)."""
    entropy: Mapped[float] = mapped_column(Float)
    """Entropy of the four probabilities in nats (entropy sampling asks for the highest first)."""

    __table_args__ = (
        UniqueConstraint("model_version_id", "item_id", name="uq_predictions_version_item"),
        # One index per uncertainty score: a batch walks the most uncertain posts first and stops early,
        # instead of reading the whole pool (bench/sampler.py).
        Index("ix_predictions_version_confidence", "model_version_id", "confidence"),
        Index("ix_predictions_version_margin", "model_version_id", "margin"),
        Index("ix_predictions_version_entropy", "model_version_id", "entropy"),
    )


class ModelVote(Base):
    """The fast model's cross-fitted label for one labelled pool post, from the version whose training made it:
    predicted by a head trained on the other folds' labels, never on the post's own. The reliability model
    (db.consensus) counts the newest ready fast version's votes as one more voter."""

    __tablename__ = "model_votes"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(16))

    __table_args__ = (
        UniqueConstraint("model_version_id", "item_id", name="uq_model_votes_version_item"),
        CheckConstraint("label IN (" + ", ".join(f"'{label}'" for label in LABELS) + ")", name="label_known"),
    )


PROBABILITY_COLUMNS = (Prediction.p_pro, Prediction.p_anti, Prediction.p_neutral, Prediction.p_unrelated)
"""A version's four probabilities, in LABELS order."""


def prediction_row(model_version_id: int, item_id: int, probabilities: Sequence[float]) -> dict[str, Any]:
    """A predictions row for bulk insert: the four probabilities (LABELS order) and their uncertainty scores."""
    p = [float(x) for x in probabilities]
    top, second = sorted(p, reverse=True)[:2]
    return {
        "model_version_id": model_version_id,
        "item_id": item_id,
        "p_pro": p[0],
        "p_anti": p[1],
        "p_neutral": p[2],
        "p_unrelated": p[3],
        "confidence": top,
        "margin": top - second,
        "entropy": -sum(x * math.log(x) for x in p if x > 0),
    }


class Job(Base):
    """A unit of work for the worker: the only channel from the web side to the trainer."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    kind: Mapped[JobKind] = mapped_column(_enum(JobKind, "job_kind"))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus, "job_status"), default=JobStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=3)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    progress_message: Mapped[str] = mapped_column(Text, default="")
    heartbeat_at: Mapped[datetime | None]
    worker_id: Mapped[str | None] = mapped_column(String(120))
    error: Mapped[str | None] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_jobs_status_created", "status", "created_at"),
        # At most one queued job per dedupe key (one queued retrain per project).
        Index(
            "uq_jobs_queued_dedupe_key",
            "dedupe_key",
            unique=True,
            sqlite_where=text("status = 'queued'"),
            postgresql_where=text("status = 'queued'"),
        ),
    )


class LabelStudioLink(Base):
    """A project's connection to a Label Studio project. The API token is not stored here: it comes from
    LINGUALOOP_LABELSTUDIO_TOKEN, or a 0600 file (the `_FILE` variant, or the one `labelstudio connect` writes)."""

    __tablename__ = "labelstudio_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), unique=True)
    url: Mapped[str] = mapped_column(String(500))
    ls_project_id: Mapped[int | None]
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    """The model version whose predictions the open tasks carry."""
    last_sync_at: Mapped[datetime | None]
    last_sync_message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LabelStudioTask(Base):
    """A post pushed to Label Studio as a task."""

    __tablename__ = "labelstudio_tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("labelstudio_links.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    task_id: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("link_id", "item_id", name="uq_labelstudio_tasks_link_item"),
        UniqueConstraint("link_id", "task_id", name="uq_labelstudio_tasks_link_task"),
    )
