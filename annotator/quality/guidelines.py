"""Versioned guidelines: the project's own and an optional translation per language, what an annotator is shown.

Versions only grow, one sequence per (project, language), so the version stored with an answer always says what
its annotator read. The project's own guideline (language "") is mirrored into Project.guidelines, which the
Label Studio config and older code read.

Empty text: the project's own guideline may be emptied (annotators then see none), a translation may be emptied
to withdraw it (its language's annotators then see the project's guideline); both are recorded as a version."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.accounts.access import RESEARCHERS, Actor, require_role
from annotator.errors import LingualoopError
from core.languages import UnknownLanguageError, language_name, normalise_language
from db.models import Guideline, Project, User

MAX_GUIDELINE = 100_000
"""Characters in one guideline version: far beyond a real guideline, short of a file pasted by mistake."""


@dataclass(frozen=True)
class ShownGuideline:
    """The guideline an annotator of a language is shown: a translation, the project's own, or (id None,
    version 0) the project's text from before guidelines were versioned."""

    id: int | None
    version: int
    language: str
    """The translation's language, or "" for the project's own guideline."""
    text: str

    @property
    def tag(self) -> str:
        """How exports name it: "tr v2", "v3" (the project's own), "" when unversioned."""
        if self.id is None:
            return ""
        return guideline_tag(self.language, self.version)


def guideline_tag(language: str, version: int) -> str:
    return f"{language} v{version}" if language else f"v{version}"


@dataclass(frozen=True)
class GuidelineVersion:
    """One line of a guideline's history, for a researcher's page."""

    id: int
    language: str
    version: int
    text: str
    author: str
    """Who wrote it: a username, or "operator" (the command line)."""
    created_at: datetime


def _language_of(project: Project, language: str | None) -> str:
    """The language code a translation is for ("" for the project's own), checked against the project's."""
    if not language or not language.strip():
        return ""
    known = list(project.languages)
    try:
        code = normalise_language(language)
    except UnknownLanguageError:
        code = language.strip()
    if code not in known:
        listed = ", ".join(f"{language_name(c)} ({c})" for c in known) or "none yet: import posts first"
        raise LingualoopError(
            f"Project '{project.name}' has no language '{language.strip()}', so it takes no translation for it. "
            f"Its languages: {listed}."
        )
    return code


def _latest(session: Session, project_id: int, language: str) -> Guideline | None:
    return session.scalar(
        select(Guideline)
        .where(Guideline.project_id == project_id, Guideline.language == language)
        .order_by(Guideline.version.desc())
        .limit(1)
    )


def set_guideline(
    session: Session, project: Project, by: Actor, text: str, language: str | None = None
) -> Guideline:
    """Append a new version of the project's guideline (language None or "") or of its translation for one of
    the project's languages. A text equal to the latest version's adds nothing and returns that version.
    Raises LingualoopError, changing nothing, for a language the project does not have, an over-long text, or
    emptying a translation that does not exist."""
    require_role(by, RESEARCHERS, "change the guidelines")
    code = _language_of(project, language)
    if len(text) > MAX_GUIDELINE:
        raise LingualoopError(
            f"That guideline is {len(text):,} characters long; at most {MAX_GUIDELINE:,} are kept."
        )
    latest = _latest(session, project.id, code)
    if latest is not None and latest.text == text:
        return latest
    if code and latest is None and not text.strip():
        raise LingualoopError(f"There is no {language_name(code)} ({code}) translation to withdraw.")
    guideline = Guideline(
        project_id=project.id,
        language=code,
        version=(latest.version if latest is not None else 0) + 1,
        text=text,
        user_id=by.id if isinstance(by, User) else None,
    )
    session.add(guideline)
    if not code:
        project.guidelines = text
    session.flush()
    return guideline


def guideline_for(session: Session, project: Project, language: str) -> ShownGuideline:
    """What an annotator of `language` is shown: the latest translation for it (unless withdrawn), else the
    project's latest version, else Project.guidelines unversioned (id None, version 0)."""
    for code in ([language] if language else []) + [""]:
        latest = _latest(session, project.id, code)
        if latest is not None and (latest.text.strip() or not code):
            return ShownGuideline(latest.id, latest.version, code, latest.text)
    return ShownGuideline(None, 0, "", project.guidelines or "")


def translations(session: Session, project: Project) -> dict[str, ShownGuideline]:
    """The latest standing (not withdrawn) translation per language, in language order."""
    found = {}
    for code in sorted(project.languages):
        latest = _latest(session, project.id, code)
        if latest is not None and latest.text.strip():
            found[code] = ShownGuideline(latest.id, latest.version, code, latest.text)
    return found


def guideline_history(
    session: Session, project: Project, language: str | None = None
) -> list[GuidelineVersion]:
    """Every version, newest first: of one language's translation ("" or None: the project's own), or of all
    (language "*")."""
    query = (
        select(Guideline, User.username)
        .outerjoin(User, User.id == Guideline.user_id)
        .where(Guideline.project_id == project.id)
    )
    if language != "*":
        query = query.where(Guideline.language == (language or ""))
    rows = session.execute(query.order_by(Guideline.language, Guideline.version.desc())).all()
    return [
        GuidelineVersion(g.id, g.language, g.version, g.text, username or "operator", g.created_at)
        for g, username in rows
    ]


def guideline_tags(session: Session, project: Project) -> dict[int, str]:
    """Guideline id -> "tr v2" / "v3" for every version of the project (the export's `guideline__<user>`)."""
    return {
        guideline_id: guideline_tag(language, version)
        for guideline_id, language, version in session.execute(
            select(Guideline.id, Guideline.language, Guideline.version).where(
                Guideline.project_id == project.id
            )
        )
    }
