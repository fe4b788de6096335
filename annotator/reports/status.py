"""Counts for `lingualoop status` and the app's overview: posts, labels and progress per language."""

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Annotation, AnnotationKind, ImportRun, Item, ModelVersion, Project
from db.versions import current_version


@dataclass
class LanguageCounts:
    pool: int = 0
    eval: int = 0
    labelled: int = 0
    labels: dict[str, int] = field(default_factory=dict)


@dataclass
class ProjectStatus:
    project: str
    languages: dict[str, LanguageCounts]
    imports: int
    model_versions: int
    current_version: int | None

    @property
    def posts(self) -> int:
        return sum(c.pool + c.eval for c in self.languages.values())

    @property
    def labelled(self) -> int:
        return sum(c.labelled for c in self.languages.values())


def project_status(session: Session, project: Project) -> ProjectStatus:
    """Aggregates computed in the database, so status stays fast on large pools."""
    languages: dict[str, LanguageCounts] = defaultdict(LanguageCounts)
    by_split = select(Item.language, Item.split, func.count()).where(Item.project_id == project.id)
    for language, split, count in session.execute(by_split.group_by(Item.language, Item.split)):
        setattr(languages[language], str(getattr(split, "value", split)), count)
    labels = (
        select(Item.language, Annotation.label, func.count(), func.count(func.distinct(Item.id)))
        .join(Annotation, Annotation.item_id == Item.id)
        .where(Item.project_id == project.id, Annotation.kind == AnnotationKind.LABEL)
        .group_by(Item.language, Annotation.label)
    )
    for language, label, count, _ in session.execute(labels):
        languages[language].labels[str(label)] = count
    labelled = (
        select(Item.language, func.count(func.distinct(Item.id)))
        .join(Annotation, Annotation.item_id == Item.id)
        .where(Item.project_id == project.id, Annotation.kind == AnnotationKind.LABEL)
        .group_by(Item.language)
    )
    for language, count in session.execute(labelled):
        languages[language].labelled = count
    imports = session.scalar(
        select(func.count()).select_from(ImportRun).where(ImportRun.project_id == project.id)
    )
    versions = session.scalar(
        select(func.count()).select_from(ModelVersion).where(ModelVersion.project_id == project.id)
    )
    version = current_version(session, project.id)
    current = version.id if version is not None else None
    return ProjectStatus(
        project=project.name,
        languages=dict(sorted(languages.items())),
        imports=imports or 0,
        model_versions=versions or 0,
        current_version=current,
    )
