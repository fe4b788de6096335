"""Which posts are controls and whose labels are excluded: the facts both the consensus (db/consensus.py) and the
web side's serving and reports read."""

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from db.models import AnnotatorExclusion, ControlPost, Item


def active_controls_query(project_id: int) -> Select[int]:
    """Ids of the project's active control posts (for `.not_in(...)` / `.in_(...)` in other queries)."""
    return (
        select(ControlPost.item_id)
        .join(Item, Item.id == ControlPost.item_id)
        .where(Item.project_id == project_id, ControlPost.active.is_(True))
    )


def active_controls(session: Session, project_id: int) -> dict[int, str]:
    """The project's active control posts and their gold labels."""
    # A comprehension: dict(result) would take the Result (it has keys()) for a mapping and fail.
    return {
        item_id: label
        for item_id, label in session.execute(
            select(ControlPost.item_id, ControlPost.label)
            .join(Item, Item.id == ControlPost.item_id)
            .where(Item.project_id == project_id, ControlPost.active.is_(True))
        )
    }


def excluded_users_query(project_id: int) -> Select[int]:
    """Ids of the annotators whose labels a researcher excluded from the project's training and consensus."""
    return select(AnnotatorExclusion.user_id).where(
        AnnotatorExclusion.project_id == project_id, AnnotatorExclusion.lifted_at.is_(None)
    )


def excluded_users(session: Session, project_id: int) -> set[int]:
    return set(session.scalars(excluded_users_query(project_id)))
