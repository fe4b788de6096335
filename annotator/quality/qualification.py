"""Qualification rounds per language: with the project's `qualification` setting on, an annotator of a language
first answers a round of control posts of that language, and labels its corpus posts once they pass (or a
researcher admits them). A round's answers are the annotator's labels on that language's controls since the
round started; a pass is recorded once and kept, even if the settings change later."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from annotator.accounts.access import RESEARCHERS, Actor, require_role
from annotator.accounts.users import get_user
from annotator.errors import LingualoopError
from annotator.quality.settings import quality_settings
from core.languages import language_name
from core.quality import QualitySettings
from db.models import Annotation, AnnotationKind, ControlPost, Item, Project, Qualification, User, utcnow

STATES = ("not required", "qualifying", "passed", "admitted", "failed", "no controls")
"""qualifying: a round in progress; failed: a finished round below the threshold (until they try again);
no controls: the round cannot go on, no control of the language is left that they have not answered."""
OPEN_STATES = ("not required", "passed", "admitted")
"""States in which the annotator may label the language's corpus posts."""


@dataclass(frozen=True)
class Mistake:
    """A control answered wrongly in a failed round, shown beside its gold label."""

    item_id: int
    text: str
    given: str
    gold: str


@dataclass(frozen=True)
class Standing:
    """Where an annotator stands in the qualification of one language."""

    language: str
    state: str
    answered: int
    needed: int
    """Controls in a round."""
    correct: int
    threshold: float
    mistakes: tuple[Mistake, ...] = ()
    """Only after a failed round (during a round they would give the answers away)."""
    attempt: int = 1
    controls_left: int = 0
    """Controls of the language this annotator has not answered yet (what another round could use)."""

    @property
    def right_needed(self) -> int:
        """Right answers a round needs to pass."""
        return math.ceil(self.threshold * self.needed - 1e-9)

    @property
    def may_label(self) -> bool:
        return self.state in OPEN_STATES

    def message(self) -> str:
        """Where the annotator stands, in plain words for the annotate page."""
        name = language_name(self.language)
        if self.state == "not required":
            return f"No qualification is needed for {name}."
        if self.state == "qualifying":
            return f"Qualification in {name}: {self.answered} of {self.needed} answered."
        if self.state == "passed":
            return f"You passed the {name} qualification ({self.correct} of {self.needed} right)."
        if self.state == "admitted":
            return f"A researcher admitted you to label {name} posts."
        if self.state == "no controls":
            return (
                f"Qualification in {name}: {self.answered} of {self.needed} answered, and no {name} control "
                "posts are left for you. A researcher can admit you by hand."
            )
        score = f"{name} qualification: {self.correct} of {self.needed} right; {self.right_needed} needed."
        if self.controls_left == 0:
            return (
                f"{score} Review your mistakes below. No new {name} posts are left for another round: "
                "a researcher can admit you by hand."
            )
        return f"{score} Review your mistakes below, then try again with new posts."


def project_languages(session: Session, project: Project) -> list[str]:
    """The project's languages (imports add the new ones they bring); those of its posts if it names none."""
    if project.languages:
        return sorted(project.languages)
    return sorted(session.scalars(select(Item.language).where(Item.project_id == project.id).distinct()))


def _user_languages(session: Session, project: Project, user: User) -> list[str]:
    return sorted(user.languages) if user.languages else project_languages(session, project)


def _qualification(session: Session, project: Project, user: User, language: str) -> Qualification | None:
    return session.scalar(
        select(Qualification).where(
            Qualification.project_id == project.id,
            Qualification.user_id == user.id,
            Qualification.language == language,
        )
    )


def unanswered_controls_query(
    project: Project, user: User, languages: Sequence[str] | None = None
) -> Select[int]:
    """Ids of the project's active controls (in these languages, or any when None) this annotator has not
    answered in any way: what qualification counts and what serving draws from."""
    answered = select(Annotation.item_id).where(Annotation.user_id == user.id)
    query = (
        select(ControlPost.item_id)
        .join(Item, Item.id == ControlPost.item_id)
        .where(
            Item.project_id == project.id,
            ControlPost.active.is_(True),
            ControlPost.item_id.not_in(answered),
        )
    )
    return query if languages is None else query.where(Item.language.in_(languages))


def unanswered_controls(session: Session, project: Project, user: User, language: str) -> int:
    """Active controls of the language this annotator has not answered (in any way) yet."""
    query = unanswered_controls_query(project, user, [language])
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def _round_answers(
    session: Session,
    project: Project,
    user: User,
    language: str,
    since: datetime | None,
    limit: int,
    until: datetime | None = None,
) -> list[tuple[int, str, str | None, str]]:
    """(post, text, label given, gold label) of the round's first `limit` labels on the language's controls."""
    query = (
        select(Item.id, Item.text, Annotation.label, ControlPost.label)
        .join(ControlPost, ControlPost.item_id == Item.id)
        .join(Annotation, Annotation.item_id == Item.id)
        .where(
            Item.project_id == project.id,
            Item.language == language,
            ControlPost.active.is_(True),
            Annotation.user_id == user.id,
            Annotation.kind == AnnotationKind.LABEL,
        )
        .order_by(Annotation.created_at, Annotation.id)
        .limit(limit)
    )
    if since is not None:
        query = query.where(Annotation.created_at >= since)
    if until is not None:
        query = query.where(Annotation.created_at <= until)
    return [tuple(row) for row in session.execute(query).all()]  # type: ignore[misc]


def standing(
    session: Session,
    project: Project,
    user: User,
    language: str,
    settings: QualitySettings | None = None,
    *,
    record_pass: bool = False,
) -> Standing:
    """Where the annotator stands in one language. With record_pass (serving, in a writing transaction), a round
    just passed is recorded, once: from then on it stands whatever the settings become."""
    settings = settings or quality_settings(project)
    needed, threshold = settings.qualification_controls, settings.qualification_threshold
    record = _qualification(session, project, user, language)
    attempt = record.attempt if record is not None else 1
    if record is not None and record.passed_at is not None:
        answers = _round_answers(
            session, project, user, language, record.started_at, needed, record.passed_at
        )
        right = sum(1 for _, _, given, gold in answers if given == gold)
        passed = Standing(language, "passed", len(answers), needed, right, threshold, attempt=attempt)
        # A pass without a passing round is an admission (the operator's leaves no admitted_by).
        admitted = record.admitted_by is not None or len(answers) < needed or right < passed.right_needed
        return _replace_state(passed, "admitted") if admitted else passed
    if not settings.qualification:
        return Standing(language, "not required", 0, needed, 0, threshold, attempt=attempt)
    # Without a record the round has not started: serving starts it with the first control it serves.
    answers = (
        _round_answers(session, project, user, language, record.started_at, needed)
        if record is not None
        else []
    )
    right = sum(1 for _, _, given, gold in answers if given == gold)
    left = unanswered_controls(session, project, user, language)
    base = Standing(
        language, "qualifying", len(answers), needed, right, threshold, attempt=attempt, controls_left=left
    )
    if len(answers) < needed:
        return base if left > 0 else _replace_state(base, "no controls")
    if right >= base.right_needed:
        if record_pass and record is not None:
            record.passed_at = utcnow()
            session.flush()
        return _replace_state(base, "passed")
    mistakes = tuple(
        Mistake(item_id, text, given or "", gold) for item_id, text, given, gold in answers if given != gold
    )
    return Standing(
        language,
        "failed",
        len(answers),
        needed,
        right,
        threshold,
        mistakes,
        attempt=attempt,
        controls_left=left,
    )


def _replace_state(found: Standing, state: str) -> Standing:
    return Standing(
        found.language,
        state,
        found.answered,
        found.needed,
        found.correct,
        found.threshold,
        found.mistakes,
        attempt=found.attempt,
        controls_left=found.controls_left,
    )


def standings(session: Session, project: Project, user: User, *, record_pass: bool = False) -> list[Standing]:
    """Where the annotator stands in each of their languages (every language of the project when their account
    names none); record_pass as in `standing`."""
    settings = quality_settings(project)
    return [
        standing(session, project, user, lang, settings, record_pass=record_pass)
        for lang in _user_languages(session, project, user)
    ]


def start_round(session: Session, project: Project, user: User, language: str) -> Qualification:
    """The annotator's qualification record in a language, created (round 1, starting now) if there is none."""
    record = _qualification(session, project, user, language)
    if record is None:
        record = Qualification(project_id=project.id, user_id=user.id, language=language, started_at=utcnow())
        session.add(record)
        session.flush()
    return record


def try_again(session: Session, project: Project, user: User, language: str) -> Standing:
    """Start a new round after a failed one; it is served controls the annotator has not answered yet."""
    found = standing(session, project, user, language)
    name = language_name(language)
    if found.state != "failed":
        raise LingualoopError(f"There is no failed {name} qualification round to try again.")
    if found.controls_left == 0:
        raise LingualoopError(
            f"No {name} control posts are left that you have not answered, so a new round cannot start: "
            "a researcher can admit you by hand."
        )
    record = start_round(session, project, user, language)
    record.attempt += 1
    record.started_at = utcnow()
    session.flush()
    return standing(session, project, user, language)


def admit(session: Session, project: Project, by: Actor, username: str, language: str) -> Qualification:
    """A researcher lets an annotator label a language without (or despite) a qualification round."""
    require_role(by, RESEARCHERS, "admit annotators")
    user = get_user(session, username)
    languages = project_languages(session, project)
    if language not in languages:
        raise LingualoopError(
            f"Project '{project.name}' has no language '{language}' (its languages: "
            f"{', '.join(languages) or 'none yet'}): nobody was admitted."
        )
    record = start_round(session, project, user, language)
    if record.passed_at is None:
        record.passed_at = utcnow()
        record.admitted_by = by.id if isinstance(by, User) else None
    session.flush()
    return record


def serving_languages(session: Session, project: Project, user: User) -> list[str] | None:
    """The languages whose corpus posts this annotator may label now; None when qualification is off (no
    restriction beyond their account's languages)."""
    if not quality_settings(project).qualification:
        return None
    return [found.language for found in standings(session, project, user) if found.may_label]
