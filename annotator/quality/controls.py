"""Control posts: a researcher marks posts whose label is known (gold), the server mixes them into annotators'
streams, and each annotator's answers on them are scored against the gold label."""

import random
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from annotator.accounts.access import RESEARCHERS, Actor, require_role
from annotator.errors import LingualoopError, NotFoundError
from core.labels import LABELS
from db.consensus import project_consensus
from db.models import Annotation, AnnotationKind, ControlPost, ControlSource, Item, Project, Split, User


def _post_of(session: Session, project: Project, item_id: int) -> Item:
    item = session.get(Item, item_id)
    if item is None or item.project_id != project.id:
        raise NotFoundError(f"Post {item_id} is not in project '{project.name}': nothing was changed.")
    return item


def _gold_label(label: str | None) -> str:
    gold = (label or "").strip().lower()
    if not gold:
        raise LingualoopError(
            f"A control post needs its gold label (one of {', '.join(LABELS)}): nothing was marked."
        )
    if gold not in LABELS:
        raise LingualoopError(
            f"Unknown label '{label}' for a control post: use one of {', '.join(LABELS)}. Nothing was marked."
        )
    return gold


def mark_control(
    session: Session,
    project: Project,
    by: Actor,
    item_id: int,
    label: str | None,
    *,
    source: ControlSource = ControlSource.MANUAL,
) -> ControlPost:
    """Make a post of the project a control with this gold label. Marking a post again changes its label and
    makes it active again (the row is kept, so scores made with it stay explainable)."""
    require_role(by, RESEARCHERS, "mark control posts")
    gold = _gold_label(label)
    _post_of(session, project, item_id)
    control = session.scalar(select(ControlPost).where(ControlPost.item_id == item_id))
    if control is None:
        control = ControlPost(item_id=item_id)
        session.add(control)
    control.label, control.source, control.active = gold, source, True
    control.user_id = by.id if isinstance(by, User) else None
    session.flush()
    return control


def unmark_control(session: Session, project: Project, by: Actor, item_id: int) -> ControlPost:
    """Stop serving a post as a control; the answers given on it stay in the database."""
    require_role(by, RESEARCHERS, "unmark control posts")
    _post_of(session, project, item_id)
    control = session.scalar(select(ControlPost).where(ControlPost.item_id == item_id))
    if control is None or not control.active:
        raise LingualoopError(f"Post {item_id} is not a control post: nothing was changed.")
    control.active = False
    session.flush()
    return control


@dataclass(frozen=True)
class ControlRow:
    """One active control post, for a researcher's table."""

    item_id: int
    language: str
    text: str
    label: str
    source: str
    answers: int
    """Labels annotators gave on it (skips and flags are not scored)."""
    right: int
    share_right: float | None
    """right / answers, None before anyone answered it."""


def list_controls(session: Session, project: Project) -> list[ControlRow]:
    """The project's active control posts with how often annotators got them right, by language then post."""
    given = (
        select(
            Annotation.item_id.label("item_id"),
            func.count().label("answers"),
            func.sum(case((Annotation.label == ControlPost.label, 1), else_=0)).label("right"),
        )
        .join(ControlPost, ControlPost.item_id == Annotation.item_id)
        .where(Annotation.kind == AnnotationKind.LABEL)
        .group_by(Annotation.item_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Item.id,
            Item.language,
            Item.text,
            ControlPost.label,
            ControlPost.source,
            func.coalesce(given.c.answers, 0),
            func.coalesce(given.c.right, 0),
        )
        .join(ControlPost, ControlPost.item_id == Item.id)
        .outerjoin(given, given.c.item_id == Item.id)
        .where(Item.project_id == project.id, ControlPost.active.is_(True))
        .order_by(Item.language, Item.id)
    ).all()
    return [
        ControlRow(
            item_id=item_id,
            language=language,
            text=text,
            label=label,
            source=ControlSource(source).value,
            answers=int(answers),
            right=int(right),
            share_right=int(right) / int(answers) if answers else None,
        )
        for item_id, language, text, label, source, answers, right in rows
    ]


def controls_from_eval(
    session: Session, project: Project, by: Actor, *, per_language: int, seed: int = 0
) -> dict[str, int]:
    """Make up to `per_language` labelled eval posts of each language controls (source eval), chosen at random
    among those that are not controls yet; their consensus label (adjudicated, else the aggregation's) is the gold
    answer. They stay eval posts, so the models' scores still use them. Returns the posts marked per language."""
    require_role(by, RESEARCHERS, "mark control posts")
    if not 1 <= per_language <= 10_000:
        raise LingualoopError("Choose between 1 and 10,000 eval posts per language: nothing was marked.")
    already = set(session.scalars(select(ControlPost.item_id).where(ControlPost.active.is_(True))))
    languages = {
        item_id: language
        for item_id, language in session.execute(
            select(Item.id, Item.language).where(Item.project_id == project.id, Item.split == Split.EVAL)
        )
    }
    by_language: dict[str, list[tuple[int, str]]] = {}
    for item_id, decided in project_consensus(session, project.id, Split.EVAL).items():
        if decided.label is not None and item_id not in already:
            by_language.setdefault(languages[item_id], []).append((item_id, decided.label))
    if not by_language:
        raise LingualoopError(
            "No labelled eval post is left to use as a control: import gold labels with --split eval first."
        )
    rng = random.Random(seed)
    marked: dict[str, int] = {}
    for language in sorted(by_language):
        candidates = by_language[language]
        for item_id, label in rng.sample(candidates, min(per_language, len(candidates))):
            mark_control(session, project, by, item_id, label, source=ControlSource.EVAL)
        marked[language] = min(per_language, len(candidates))
    return marked
