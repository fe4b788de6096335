import pytest
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.corpus.projects import create_project, get_project
from annotator.errors import AlreadyExistsError, LingualoopError, NotFoundError
from core.labels import LABELS


def test_create_with_renamed_labels(session: Session) -> None:
    project = create_project(
        session,
        "study",
        languages=["es", "EN", "in"],
        label_names={"pro": "Supportive"},
        by=OPERATOR,
    )
    assert project.languages == ["en", "es", "id"]
    assert project.label_names["pro"] == "Supportive" and set(project.label_names) == set(LABELS)


def test_rules(session: Session) -> None:
    with pytest.raises(NotFoundError, match="lingualoop init"):
        get_project(session)
    create_project(session, "a", by=OPERATOR)
    assert get_project(session).name == "a"
    with pytest.raises(AlreadyExistsError):
        create_project(session, "a", by=OPERATOR)
    create_project(session, "b", by=OPERATOR)
    with pytest.raises(LingualoopError, match="--project"):
        get_project(session)
    with pytest.raises(NotFoundError, match="projects: a, b"):
        get_project(session, "c")
    with pytest.raises(LingualoopError, match="Unknown label code"):
        create_project(session, "d", label_names={"positive": "x"}, by=OPERATOR)
    with pytest.raises(LingualoopError, match="at least 1"):
        create_project(session, "e", overlap=0, by=OPERATOR)
