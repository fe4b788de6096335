"""Answers from annotators: a label, a skip or a flag, with the seconds spent; undo of the last answer; progress.

One answer per (post, user) lives in `annotations`; every change is appended to `annotation_events`, so an undo
or a correction never loses what was there before. An answer completes the post's lease; an undo gives the post
back to the same annotator."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from annotator.annotation.serving import LEASE
from annotator.errors import LingualoopError, NotFoundError
from annotator.quality.guidelines import guideline_for
from annotator.quality.qualification import standing, unanswered_controls
from annotator.quality.settings import quality_settings
from annotator.retraining.requests import maybe_request_fast_retrain
from annotator.sampling.sampler import open_counts
from core.labels import LABELS
from db.models import (
    Annotation,
    AnnotationEvent,
    AnnotationKind,
    AnnotationSource,
    Assignment,
    EventAction,
    Item,
    Project,
    User,
    utcnow,
)
from db.quality import active_controls
from db.versions import current_version, probabilities_of

MAX_FLAG_REASON = 2_000


@dataclass(frozen=True)
class Answer:
    kind: AnnotationKind
    label: str | None = None
    flag_reason: str | None = None

    @staticmethod
    def of_label(label: str) -> "Answer":
        if label not in LABELS:
            raise LingualoopError(f"Unknown label '{label}': use one of {', '.join(LABELS)}.")
        return Answer(AnnotationKind.LABEL, label)

    @staticmethod
    def skip() -> "Answer":
        return Answer(AnnotationKind.SKIP)

    @staticmethod
    def flag(reason: str) -> "Answer":
        reason = reason.strip()
        if not reason:
            raise LingualoopError("Say why you flag this post (offensive, wrong language, spam, ...).")
        return Answer(AnnotationKind.FLAG, flag_reason=reason[:MAX_FLAG_REASON])


def _event(annotation: Annotation, action: EventAction) -> AnnotationEvent:
    return AnnotationEvent(
        item_id=annotation.item_id,
        user_id=annotation.user_id,
        action=action,
        kind=annotation.kind,
        label=annotation.label,
        flag_reason=annotation.flag_reason,
        source=annotation.source,
        seconds=annotation.seconds,
        guideline_id=annotation.guideline_id,
    )


def record_answer(
    session: Session,
    project: Project,
    user: User,
    item_id: int,
    answer: Answer,
    *,
    seconds: float | None = None,
    source: AnnotationSource = AnnotationSource.APP,
    queue_fast_retrain: bool = True,
    guideline_id: int | None = None,
) -> Annotation:
    """Store (or correct) this user's answer for a post of the project and complete its lease. Bulk callers
    (a Label Studio pull) pass queue_fast_retrain=False and call maybe_request_fast_retrain once at the end.
    `guideline_id` is the guideline version the annotator was shown (annotator/quality/guidelines.py)."""
    item = session.get(Item, item_id)
    if item is None or item.project_id != project.id:
        raise NotFoundError(f"Post {item_id} is not in project '{project.name}'.")
    existing = session.scalar(
        select(Annotation).where(Annotation.item_id == item_id, Annotation.user_id == user.id)
    )
    now = utcnow()
    spent = None if seconds is None else max(0.0, min(float(seconds), 3600.0))
    if existing is None:
        annotation = Annotation(item_id=item_id, user_id=user.id, source=source, created_at=now)
        session.add(annotation)
        action = EventAction.CREATE
    else:
        annotation, action = existing, EventAction.UPDATE
    annotation.kind, annotation.label, annotation.flag_reason = answer.kind, answer.label, answer.flag_reason
    annotation.seconds, annotation.updated_at, annotation.source = spent, now, source
    annotation.guideline_id = guideline_id
    session.flush()
    session.add(_event(annotation, action))
    session.execute(
        update(Assignment)
        .where(Assignment.item_id == item_id, Assignment.user_id == user.id)
        .values(completed_at=now)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    if queue_fast_retrain and answer.kind == AnnotationKind.LABEL:
        maybe_request_fast_retrain(session, project)
    return annotation


class StaleAnswerError(LingualoopError):
    """An answer for a post that is not (or no longer) the one this annotator has open: nothing was recorded."""


@dataclass(frozen=True)
class Shown:
    """The post on the annotator's screen when they answered: the post and the lease it was served under."""

    item_id: int
    lease_id: int


def answer_shown(
    session: Session,
    project: Project,
    user: User,
    shown: Shown,
    answer: Answer,
    *,
    seconds: float | None = None,
) -> Annotation:
    """Record an answer for the post that was on screen, and for no other: the app's answers go through here.

    Refused with StaleAnswerError, writing nothing, when the lease is not this user's open lease of that post (a
    key press that arrives after the screen moved on never lands on another post) or the user has answered the
    post already (a second press from the same burst never silently replaces the first: Undo, then answer)."""
    lease = session.get(Assignment, shown.lease_id)
    if lease is None or lease.item_id != shown.item_id or lease.user_id != user.id:
        raise StaleAnswerError(
            "That answer was for a post that is not yours to label now: nothing was recorded."
        )
    answered = session.scalar(
        select(Annotation.id).where(Annotation.item_id == shown.item_id, Annotation.user_id == user.id)
    )
    if answered is not None or lease.completed_at is not None:
        raise StaleAnswerError(
            "You have answered that post already, so nothing was changed: press U to undo your last answer."
        )
    # The version shown is the one current now: the page renders the guideline on every post it serves.
    item = session.get(Item, shown.item_id)
    guideline = guideline_for(session, project, item.language if item is not None else "")
    return record_answer(
        session, project, user, shown.item_id, answer, seconds=seconds, guideline_id=guideline.id
    )


def undo_last(
    session: Session, project: Project, user: User, *, within: timedelta = timedelta(hours=12)
) -> Item | None:
    """Take back this user's most recent answer in the project (given in the app, in the last `within`): the
    answer is removed (its history kept) and the post is leased to the user again, so it is shown next.
    Returns the post, or None when there is nothing to undo."""
    annotation = session.scalar(
        select(Annotation)
        .join(Item, Item.id == Annotation.item_id)
        .where(
            Item.project_id == project.id,
            Annotation.user_id == user.id,
            Annotation.source == AnnotationSource.APP,
            Annotation.updated_at > utcnow() - within,
        )
        .order_by(Annotation.updated_at.desc(), Annotation.id.desc())
        .limit(1)
    )
    if annotation is None:
        return None
    item_id = annotation.item_id
    _refuse_undo_of_a_scored_round(session, project, user, item_id)
    session.add(_event(annotation, EventAction.DELETE))
    session.delete(annotation)
    session.execute(
        update(Assignment)
        .where(Assignment.item_id == item_id, Assignment.user_id == user.id)
        .values(
            completed_at=None, leased_until=utcnow() + LEASE
        )  # the newest lease: next_item resumes it first
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return session.get(Item, item_id)


def _refuse_undo_of_a_scored_round(session: Session, project: Project, user: User, item_id: int) -> None:
    """A failed qualification round shows its gold labels: taking one of its answers back would let the annotator
    answer it again knowing the answer, so it is refused (Try again starts a round with posts they have not seen)."""
    if not quality_settings(project).qualification or item_id not in active_controls(session, project.id):
        return
    item = session.get(Item, item_id)
    if item is not None and standing(session, project, user, item.language).state == "failed":
        raise LingualoopError(
            "Your qualification round is scored, so its answers cannot be taken back: press Try again for a "
            "round with posts you have not seen."
        )


def model_suggestion(session: Session, project: Project, item_id: int) -> tuple[str, float] | None:
    """The current model version's most likely label for a post and its probability, or None when no ready
    version has scored it (shown to annotators only when they ask: no anchoring)."""
    version = current_version(session, project.id)
    row = probabilities_of(session, version.id, [item_id]).get(item_id) if version is not None else None
    if row is None:
        return None
    best = max(range(len(LABELS)), key=lambda i: row[i])
    return LABELS[best], float(row[best])


def start_of_today() -> datetime:
    now = utcnow()
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def answers_today(session: Session, project: Project, user: User) -> int:
    """Posts this user answered (label, skip or flag) in the project since midnight UTC."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Annotation)
            .join(Item, Item.id == Annotation.item_id)
            .where(
                Item.project_id == project.id,
                Annotation.user_id == user.id,
                Annotation.updated_at >= start_of_today(),
            )
        )
        or 0
    )


def open_posts_for(session: Session, project: Project, user: User) -> int:
    """Pool posts in the user's languages that still need labels and that the user has not answered (labelled or
    skipped), plus the control posts of those languages they have not answered: the progress bar's 'left to do'.
    Controls count like any post, so that the count drops by one after every answer and never tells a control
    apart. Counted the sampler's way: per-language totals from the index minus the few posts already done, so a
    page view never reads the whole pool."""
    counts = open_counts(session, project, count_queued=True, answered_by=user.id)
    languages = user.languages or list(counts)
    return sum(counts.get(lang, 0) for lang in languages) + sum(
        unanswered_controls(session, project, user, lang) for lang in languages
    )
