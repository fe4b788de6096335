"""Flagged posts: an annotator's "this post should not be here", with a reason, and a researcher's review of it.

A flag takes the post out of serving and sampling until a researcher decides (so offensive or broken posts are not
shown to everyone meanwhile), but it never removes the post silently: the Flags page lists every flag with its
reasons, and the review returns the post to the pool, excludes it from the corpus, or gives it its label. The flags
stay in `annotations` whatever the decision; a flag newer than the review opens the post for review again."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.accounts.access import RESEARCHERS, Actor, require_role
from annotator.annotation.adjudication import adjudicate
from annotator.errors import LingualoopError, NotFoundError
from annotator.quality.controls import mark_control
from db.models import (
    Annotation,
    AnnotationKind,
    ControlSource,
    FlagDecision,
    FlagReview,
    Item,
    Project,
    User,
    as_utc,
    utcnow,
)


@dataclass(frozen=True)
class Flag:
    username: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class FlaggedPost:
    item_id: int
    external_id: str
    language: str
    text: str
    flags: list[Flag]
    decision: FlagDecision | None
    """The review's decision, or None while no researcher has looked (or a newer flag came in)."""
    decided_by: str | None

    @property
    def pending(self) -> bool:
        return self.decision is None


def list_flagged(session: Session, project: Project, by: Actor) -> list[FlaggedPost]:
    """Every flagged post of the project, pending ones first, each with who flagged it, why and when."""
    require_role(by, RESEARCHERS, "review flagged posts")
    return _flagged_posts(session, project)


def _flagged_posts(session: Session, project: Project) -> list[FlaggedPost]:
    rows = session.execute(
        select(Item.id, Item.external_id, Item.language, Item.text, User.username, Annotation)
        .join(Annotation, Annotation.item_id == Item.id)
        .join(User, User.id == Annotation.user_id)
        .where(Item.project_id == project.id, Annotation.kind == AnnotationKind.FLAG)
        .order_by(Annotation.updated_at)
    ).all()
    flags: dict[int, list[Flag]] = defaultdict(list)
    posts: dict[int, tuple[str, str, str]] = {}
    for item_id, external_id, language, text, username, annotation in rows:
        flags[item_id].append(Flag(username, annotation.flag_reason or "", annotation.updated_at))
        posts[item_id] = (external_id, language, text)
    reviews = {
        review.item_id: (review, username)
        for review, username in session.execute(
            select(FlagReview, User.username)
            .join(User, User.id == FlagReview.user_id)
            .where(FlagReview.item_id.in_(list(posts)))
        )
    }
    found = []
    for item_id, (external_id, language, text) in posts.items():
        review, reviewer = reviews.get(item_id, (None, None))
        newest = max(as_utc(flag.at) for flag in flags[item_id])
        current = review is not None and as_utc(review.created_at) >= newest
        found.append(
            FlaggedPost(
                item_id,
                external_id,
                language,
                text,
                flags[item_id],
                review.decision if current and review is not None else None,
                reviewer if current else None,
            )
        )
    return sorted(
        found, key=lambda post: (not post.pending, -max(as_utc(f.at) for f in post.flags).timestamp())
    )


def review_flag(
    session: Session,
    project: Project,
    by: User,
    item_id: int,
    decision: FlagDecision,
    *,
    label: str | None = None,
    note: str = "",
    as_control: bool = False,
) -> FlagReview:
    """Decide on a flagged post: return it to the pool, exclude it, or relabel it (with `label`, recorded as the
    post's adjudicated label; with `as_control`, the post also becomes a control post with that gold label). A
    later decision replaces an earlier one; the flags themselves are kept."""
    require_role(by, RESEARCHERS, "review flagged posts")
    item = session.get(Item, item_id)
    if item is None or item.project_id != project.id:
        raise NotFoundError(f"Post {item_id} is not in project '{project.name}'.")
    flagged = session.scalar(
        select(Annotation.id).where(Annotation.item_id == item_id, Annotation.kind == AnnotationKind.FLAG)
    )
    if flagged is None:
        raise LingualoopError(f"Post {item.external_id} is not flagged: there is nothing to review.")
    if decision == FlagDecision.RELABELLED:
        if label is None:
            raise LingualoopError("Choose the label to give the post.")
        adjudicate(session, project, by, item_id, label, note or "relabelled after a flag")
        if as_control:
            mark_control(session, project, by, item_id, label, source=ControlSource.FLAG)
    elif label is not None or as_control:
        raise LingualoopError(
            "A label, and using the post as a control, go with the 'relabelled' decision only."
        )
    review = session.scalar(select(FlagReview).where(FlagReview.item_id == item_id))
    if review is None:
        review = FlagReview(item_id=item_id, decision=decision, user_id=by.id, note=note)
        session.add(review)
    review.decision, review.user_id, review.note, review.created_at = decision, by.id, note, utcnow()
    session.flush()
    return review


FLAG_COLUMNS = ["flags", "flag_reasons", "flag_decision"]
FLAG_STATES = ["pending", *(decision.value for decision in FlagDecision)]


def flag_columns(session: Session, project: Project) -> dict[int, dict[str, str | int | None]]:
    """For the export (which checks the role): per flagged post, how many flags, the reasons ("user: reason", one per flag) and the
    review's decision ('pending' until a researcher decides)."""
    return {
        post.item_id: {
            "flags": len(post.flags),
            "flag_reasons": "; ".join(f"{flag.username}: {flag.reason}" for flag in post.flags),
            "flag_decision": post.decision.value if post.decision else "pending",
        }
        for post in _flagged_posts(session, project)
    }


def flag_counts(session: Session, project: Project) -> dict[str, int]:
    """Flagged posts by review state (pending, returned, excluded, relabelled), for the datasheet."""
    counts: dict[str, int] = defaultdict(int)
    for post in _flagged_posts(session, project):
        counts[post.decision.value if post.decision else "pending"] += 1
    return dict(counts)
