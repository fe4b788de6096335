"""The bundled synthetic demo corpus and the project `lingualoop demo` builds from it."""

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.accounts.access import ADMINS, Actor, require_role
from annotator.accounts.users import add_user, generate_password
from annotator.corpus.ingest import ImportOptions, ImportReport, import_file
from annotator.corpus.projects import create_project
from annotator.corpus.readers import read_table
from core.progress import PhaseProgress
from db.models import Project, Role

DEMO_PROJECT = "demo"
DEMO_GUIDELINES = """\
Label each post by what it says about **immigration** (immigrants, refugees, asylum, migrants, borders).

1. **Pro-immigration**: supportive of immigrants or immigration.
2. **Anti-immigration**: opposed to immigrants or immigration.
3. **Neutral**: about immigration, with no stance (news, facts, questions).
4. **Unrelated**: not about immigration, including other meanings of the words (bird migration,
   data migration, the border of a picture).

Skip a post you cannot read; flag one that should not be in the corpus.
"""
DEMO_USERS = (
    ("admin", Role.ADMIN, ()),
    ("amira", Role.ANNOTATOR, ("ar", "en", "fr")),
    ("ravi", Role.ANNOTATOR, ("hi", "en", "de")),
)


def demo_corpus_path() -> Path:
    return Path(str(resources.files("annotator.demo").joinpath("corpus.csv")))


@dataclass
class DemoSetup:
    project: Project
    created: bool
    report: ImportReport | None
    passwords: dict[str, str]


def create_demo_project(session: Session, *, by: Actor, progress: PhaseProgress | None = None) -> DemoSetup:
    """Create the demo project, its posts (pool and eval split) and three accounts, once."""
    require_role(by, ADMINS, "create the demo project")
    existing = session.scalar(select(Project).where(Project.name == DEMO_PROJECT))
    if existing is not None:
        return DemoSetup(existing, created=False, report=None, passwords={})
    path = demo_corpus_path()
    languages = sorted({row[1] for row in read_table(path).rows if row[1]})
    project = create_project(session, DEMO_PROJECT, languages=languages, guidelines=DEMO_GUIDELINES, by=by)
    report = import_file(
        session, project, path, options=ImportOptions(annotator="gold"), progress=progress, by=by
    )
    passwords = {}
    for username, role, user_languages in DEMO_USERS:
        password = generate_password()
        add_user(session, username, role=role, password=password, languages=user_languages, by=by)
        passwords[username] = password
    return DemoSetup(project, created=True, report=report, passwords=passwords)
