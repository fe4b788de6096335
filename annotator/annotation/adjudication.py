"""Adjudication: the final label of a post, decided by a researcher (where annotators disagree, or after a flag)."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.accounts.access import RESEARCHERS, require_role
from annotator.errors import LingualoopError, NotFoundError
from core.labels import LABELS
from db.models import Adjudication, Item, Project, User


def adjudicate(
    session: Session, project: Project, by: User, item_id: int, label: str, note: str = ""
) -> Adjudication:
    """Record (or change) the final label of a post, with who decided (a signed-in researcher)."""
    require_role(by, RESEARCHERS, "adjudicate")
    if label not in LABELS:
        raise LingualoopError(f"Unknown label '{label}': use one of {', '.join(LABELS)}.")
    item = session.get(Item, item_id)
    if item is None or item.project_id != project.id:
        raise NotFoundError(f"Post {item_id} is not in project '{project.name}'.")
    decision = session.scalar(select(Adjudication).where(Adjudication.item_id == item_id))
    if decision is None:
        decision = Adjudication(item_id=item_id, label=label, user_id=by.id, note=note)
        session.add(decision)
    else:
        decision.label, decision.user_id, decision.note = label, by.id, note
    session.flush()
    return decision
