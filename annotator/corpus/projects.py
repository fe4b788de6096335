"""Projects: create, find, and their label scheme."""

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.accounts.access import RESEARCHERS, Actor, require_role
from annotator.errors import AlreadyExistsError, LingualoopError, NotFoundError
from annotator.quality.guidelines import set_guideline
from core.labels import DEFAULT_LABEL_NAMES, LABELS
from core.languages import normalise_language
from db.models import Project


def create_project(
    session: Session,
    name: str,
    *,
    languages: Iterable[str] = (),
    label_names: dict[str, str] | None = None,
    guidelines: str = "",
    overlap: int = 1,
    by: Actor,
) -> Project:
    """Create a project; label display names may be renamed, the four codes stay."""
    require_role(by, RESEARCHERS, "create projects")
    name = name.strip()
    if not name:
        raise LingualoopError("A project needs a name.")
    if session.scalar(select(Project).where(Project.name == name)) is not None:
        raise AlreadyExistsError(f"A project named '{name}' already exists.")
    names = dict(DEFAULT_LABEL_NAMES)
    for code, display in (label_names or {}).items():
        if code not in LABELS:
            raise LingualoopError(f"Unknown label code '{code}': the codes are {', '.join(LABELS)}.")
        names[code] = display.strip() or DEFAULT_LABEL_NAMES[code]
    if overlap < 1:
        raise LingualoopError("Overlap (annotations wanted per post) must be at least 1.")
    codes = sorted({normalise_language(code) for code in languages})
    project = Project(name=name, languages=codes, label_names=names, guidelines=guidelines, overlap=overlap)
    session.add(project)
    session.flush()
    if guidelines:  # version 1, so the first answers already store the guideline they were given under
        set_guideline(session, project, by, guidelines)
    return project


def get_project(session: Session, name: str | None = None) -> Project:
    """The named project, or the only one when no name is given."""
    if name is not None:
        project = session.scalar(select(Project).where(Project.name == name))
        if project is None:
            known = ", ".join(session.scalars(select(Project.name).order_by(Project.name))) or "none yet"
            raise NotFoundError(f"No project named '{name}' (projects: {known}).")
        return project
    projects = list(session.scalars(select(Project).order_by(Project.id).limit(2)))
    if not projects:
        raise NotFoundError("There is no project yet: create one with `lingualoop init NAME`.")
    if len(projects) > 1:
        raise LingualoopError("There are several projects: name one with --project.")
    return projects[0]


def list_projects(session: Session) -> list[Project]:
    return list(session.scalars(select(Project).order_by(Project.name)))
