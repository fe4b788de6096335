"""Serving posts to annotators: the next queued post in their languages, leased to them for a while, so that
concurrent annotators never get the same post beyond the overlap wanted; the queue refills from the sampler.

Control posts (annotator/quality/controls.py) are served beside the queue, never through it: a qualification
round serves only controls of its language, and otherwise a control comes when `core.quality.control_due` says so.
A control is leased exactly like a corpus post, so nothing the page receives tells the two apart."""

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import Session

from annotator.quality.qualification import standings, start_round, unanswered_controls_query
from annotator.quality.settings import quality_settings
from annotator.sampling.sampler import flag_blocked_items, select_batch
from core.quality import control_due
from db.models import (
    Annotation,
    AnnotationKind,
    Assignment,
    Item,
    Project,
    QueueEntry,
    User,
    utcnow,
)
from db.quality import active_controls_query

LEASE = timedelta(minutes=10)
REFILL_BATCH = 50
MAX_REFILLS = 2
"""Batches one call may add when the queue has nothing for this annotator (the sampler's quotas may have given
the last batch to other languages)."""


def _open_query(project: Project, user: User, languages: Sequence[str] | None = None) -> object:
    """The first open queue row for this user; `languages` narrows their account's languages (qualification)."""
    now = utcnow()
    answered_by_user = exists().where(Annotation.item_id == QueueEntry.item_id, Annotation.user_id == user.id)
    flagged = QueueEntry.item_id.in_(flag_blocked_items())
    labels = (
        select(func.count())
        .select_from(Annotation)
        .where(Annotation.item_id == QueueEntry.item_id, Annotation.kind == AnnotationKind.LABEL)
        .scalar_subquery()
    )
    leased_to_others = (
        select(func.count())
        .select_from(Assignment)
        .where(
            Assignment.item_id == QueueEntry.item_id,
            Assignment.user_id != user.id,
            Assignment.completed_at.is_(None),
            Assignment.leased_until > now,
        )
        .scalar_subquery()
    )
    query = (
        select(QueueEntry.id, QueueEntry.item_id)
        .join(Item, Item.id == QueueEntry.item_id)
        .where(
            QueueEntry.project_id == project.id,
            ~answered_by_user,
            ~flagged,
            # A post queued before it was made a control stays out: controls are served beside the queue.
            QueueEntry.item_id.not_in(active_controls_query(project.id)),
            labels + leased_to_others < project.overlap,
        )
        .order_by(QueueEntry.batch_id, QueueEntry.rank)
        .limit(1)
    )
    if languages is not None:
        query = query.where(Item.language.in_(languages))
    elif user.languages:
        query = query.where(Item.language.in_(user.languages))
    return query


def _lease(session: Session, item_id: int, user: User, lease: timedelta) -> None:
    until = utcnow() + lease
    changed = session.execute(
        update(Assignment)
        .where(Assignment.item_id == item_id, Assignment.user_id == user.id)
        .values(leased_until=until, completed_at=None)
        .execution_options(synchronize_session=False)
    )
    if int(getattr(changed, "rowcount", 0)) == 0:
        session.add(Assignment(item_id=item_id, user_id=user.id, leased_until=until))
    session.flush()


def _current_lease(session: Session, project: Project, user: User) -> Item | None:
    """A post already leased to this user and not answered yet: resume it (a page reload gives the same post). With
    several, the most recently leased: after an undo, the post taken back comes first."""
    return session.scalar(
        select(Item)
        .join(Assignment, and_(Assignment.item_id == Item.id, Assignment.user_id == user.id))
        .where(
            Item.project_id == project.id,
            Assignment.completed_at.is_(None),
            Assignment.leased_until > utcnow(),
            ~exists().where(Annotation.item_id == Item.id, Annotation.user_id == user.id),
        )
        .order_by(Assignment.leased_until.desc())
        .limit(1)
    )


def _answers_in_project(session: Session, project: Project, user: User) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Annotation)
            .join(Item, Item.id == Annotation.item_id)
            .where(Item.project_id == project.id, Annotation.user_id == user.id)
        )
        or 0
    )


def _unanswered_control(
    session: Session, project: Project, user: User, languages: Sequence[str] | None
) -> int | None:
    """A random active control (in these languages, or any when None) that this user has not answered."""
    return session.scalar(
        unanswered_controls_query(project, user, languages).order_by(func.random()).limit(1)
    )


def _control_for(session: Session, project: Project, user: User) -> tuple[Item | None, list[str] | None]:
    """(the control to serve now or None, the languages whose corpus posts the user may get: None for their
    account's). A qualification round serves its controls first; a failed round closes its language."""
    settings = quality_settings(project)
    allowed: list[str] | None = None
    if settings.qualification:
        found = standings(session, project, user, record_pass=True)
        for qualifying in (s for s in found if s.state == "qualifying"):
            control = _unanswered_control(session, project, user, [qualifying.language])
            if control is not None:
                start_round(session, project, user, qualifying.language)
                return session.get(Item, control), []
        allowed = [s.language for s in found if s.may_label]
        if not allowed:
            return None, []
    if settings.controls_in_stream and control_due(
        settings, f"{project.id}:{user.id}", _answers_in_project(session, project, user)
    ):
        languages = allowed if allowed is not None else (list(user.languages) or None)
        control = _unanswered_control(session, project, user, languages)
        if control is not None:
            return session.get(Item, control), allowed
    return None, allowed


def next_item(
    session: Session, project: Project, user: User, *, lease: timedelta = LEASE, refill: int = REFILL_BATCH
) -> Item | None:
    """The post this annotator should label next (leased to them), or None when nothing is left for them: a
    control when one is due (or their qualification round's), else the next corpus post in the languages they
    may label."""
    resumed = _current_lease(session, project, user)
    if resumed is not None:
        _lease(session, resumed.id, user, lease)
        return resumed
    control, languages = _control_for(session, project, user)
    if control is not None:
        _lease(session, control.id, user, lease)
        return control
    if languages is not None and not languages:
        return None  # qualifying or failed in every language: no corpus post until they pass
    postgres = session.get_bind().dialect.name == "postgresql"
    refills = 0
    project_locked = not postgres  # SQLite's writing transactions are exclusive already
    for _ in range(12):
        query = _open_query(project, user, languages)
        if postgres:
            # Concurrent annotators skip a queue row another one is leasing right now.
            query = query.with_for_update(of=QueueEntry, skip_locked=True)  # type: ignore[attr-defined]
        row = session.execute(query).first()  # type: ignore[call-overload]
        if row is not None and postgres and not _still_open(session, project, user, row.id, languages):
            continue  # someone else's lease landed between our snapshot and our lock: look again
        if row is not None:
            _lease(session, row.item_id, user, lease)
            return session.get(Item, row.item_id)
        if not project_locked:
            # One refill at a time per project: lock the project row, then look again (another annotator's
            # refill may have just landed). tests/reliability/test_load.py caught refills racing without it.
            session.execute(select(Project.id).where(Project.id == project.id).with_for_update())
            project_locked = True
            continue
        refills += 1
        if refills > MAX_REFILLS or select_batch(session, project, refill).size == 0:
            return None
    return None


def lease_of(session: Session, item: Item, user: User) -> int:
    """The id of this user's lease of a post (the one next_item just made or resumed): the answer the app sends
    back names it, so it can only land on that post."""
    lease = session.scalar(
        select(Assignment.id).where(Assignment.item_id == item.id, Assignment.user_id == user.id)
    )
    if lease is None:
        raise LookupError(f"post {item.id} is not leased to user {user.id}")
    return lease


def _still_open(
    session: Session, project: Project, user: User, entry_id: int, languages: Sequence[str] | None = None
) -> bool:
    """Re-check a locked queue row with a fresh statement: under READ COMMITTED it sees leases and labels that
    other annotators committed after our first query began (the lock alone would not re-check them)."""
    query = _open_query(project, user, languages).where(QueueEntry.id == entry_id)  # type: ignore[attr-defined]
    return session.execute(query).first() is not None
