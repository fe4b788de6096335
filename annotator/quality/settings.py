"""A project's label-quality settings, read and changed through the domain layer (checked, by a researcher)."""

from sqlalchemy.orm import Session

from annotator.accounts.access import RESEARCHERS, Actor, require_role
from annotator.errors import LingualoopError
from core.quality import QualitySettings
from db.models import Project


def quality_settings(project: Project) -> QualitySettings:
    return QualitySettings.of(project.quality)


def update_quality(session: Session, project: Project, by: Actor, settings: QualitySettings) -> None:
    """Change how controls are served, whether new annotators qualify first, and how labels are aggregated.
    Anything out of range raises LingualoopError and changes nothing."""
    require_role(by, RESEARCHERS, "change the label-quality settings")
    problems = settings.problems()
    if problems:
        raise LingualoopError(" ".join(problems))
    project.quality = settings.as_json()
    session.flush()
