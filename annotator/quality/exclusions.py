"""Excluding an annotator's labels from a project's training and consensus, and including them again: the labels
stay in the database and its history; only the consensus (db/consensus.py) stops counting them."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from annotator.accounts.access import OPERATOR, RESEARCHERS, Actor, actor_name, require_role
from annotator.errors import LingualoopError
from db.models import AnnotatorExclusion, Project, User, as_utc, utcnow


@dataclass(frozen=True)
class StandingExclusion:
    """An annotator whose labels are excluded now, for the datasheet and the Annotators page."""

    user_id: int
    username: str
    note: str
    excluded_by: str
    """The researcher's username, or "operator" (the command line)."""
    since: datetime


def exclude_annotator(
    session: Session, project: Project, by: Actor, username: str, note: str
) -> AnnotatorExclusion:
    """Leave `username`'s labels out of the project's consensus and training from now on, with the researcher's
    note (the datasheet shows it). Their labels are kept; include_annotator undoes it."""
    require_role(by, RESEARCHERS, "exclude an annotator's labels")
    user = _user(session, project, username)
    standing = _standing(session, project, user)
    if standing is not None:
        raise LingualoopError(
            f"{username}'s labels are already excluded from project '{project.name}' (since "
            f"{as_utc(standing.created_at):%Y-%m-%d %H:%M} UTC)."
        )
    exclusion = AnnotatorExclusion(
        project_id=project.id,
        user_id=user.id,
        note=note.strip(),
        excluded_by=by.id if isinstance(by, User) else None,
    )
    session.add(exclusion)
    session.flush()
    return exclusion


def include_annotator(session: Session, project: Project, by: Actor, username: str) -> AnnotatorExclusion:
    """Count `username`'s labels again in the project's consensus and training. The exclusion stays in the record,
    lifted (when and by whom)."""
    require_role(by, RESEARCHERS, "include an annotator's labels again")
    user = _user(session, project, username)
    standing = _standing(session, project, user)
    if standing is None:
        raise LingualoopError(
            f"{username}'s labels are not excluded from project '{project.name}': there is nothing to include."
        )
    standing.lifted_at = utcnow()
    standing.lifted_by = by.id if isinstance(by, User) else None
    session.flush()
    return standing


def standing_exclusions(session: Session, project: Project) -> list[StandingExclusion]:
    """The project's annotators whose labels are excluded now, by username."""
    excluder = aliased(User)
    rows = session.execute(
        select(AnnotatorExclusion, User.username, excluder.username)
        .join(User, User.id == AnnotatorExclusion.user_id)
        .outerjoin(excluder, excluder.id == AnnotatorExclusion.excluded_by)
        .where(AnnotatorExclusion.project_id == project.id, AnnotatorExclusion.lifted_at.is_(None))
        .order_by(User.username)
    )
    return [
        StandingExclusion(
            exclusion.user_id,
            username,
            exclusion.note,
            excluded_by or actor_name(OPERATOR),  # no user: the command line
            as_utc(exclusion.created_at),
        )
        for exclusion, username, excluded_by in rows
    ]


def _user(session: Session, project: Project, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        raise LingualoopError(
            f"No annotator named '{username}': check the name on the Annotators page of project '{project.name}'."
        )
    return user


def _standing(session: Session, project: Project, user: User) -> AnnotatorExclusion | None:
    return session.scalar(
        select(AnnotatorExclusion).where(
            AnnotatorExclusion.project_id == project.id,
            AnnotatorExclusion.user_id == user.id,
            AnnotatorExclusion.lifted_at.is_(None),
        )
    )
