"""A control import: the file's label column is each post's gold answer, its posts become control posts, and a
row without a gold label refuses the whole file."""

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from annotator.accounts.access import OPERATOR
from annotator.corpus.ingest import ImportOptions, import_file
from annotator.errors import ImportValidationError, InputFileError, LingualoopError
from db.engine import session_scope
from db.models import Annotation, ControlPost, ControlSource, Item, Project, User
from testing.factories import make_project, posts, table_counts, write_csv

CONTROLS = ImportOptions(controls=True)


@pytest.fixture
def project(sessions: sessionmaker[Session], tmp_path_factory: pytest.TempPathFactory) -> Project:
    with session_scope(sessions) as session:
        project = make_project(session)
        seed = write_csv(tmp_path_factory.mktemp("seed") / "seed.csv", posts(3, prefix="seed"))
        import_file(session, project, seed, by=OPERATOR)
    return project


def _import(sessions: sessionmaker[Session], project: Project, path: Path) -> int:
    with session_scope(sessions) as session:
        target = session.get(Project, project.id)
        assert target is not None
        return import_file(session, target, path, options=CONTROLS, by=OPERATOR).controls_marked


def _controls(session: Session) -> dict[str, tuple[str, ControlSource, bool]]:
    rows = session.execute(
        select(Item.external_id, ControlPost.label, ControlPost.source, ControlPost.active).join(
            ControlPost, ControlPost.item_id == Item.id
        )
    ).all()
    return {external_id: (label, source, active) for external_id, label, source, active in rows}


def _assert_refused(sessions: sessionmaker[Session], project: Project, path: Path, expected: str) -> None:
    with sessions() as session:
        before = table_counts(session), _controls(session)
    with pytest.raises(LingualoopError) as caught, session_scope(sessions) as session:
        target = session.get(Project, project.id)
        assert target is not None
        import_file(session, target, path, options=CONTROLS, by=OPERATOR)
    assert expected in str(caught.value)
    with sessions() as session:
        assert (table_counts(session), _controls(session)) == before, "a refused import changes nothing"


def test_gold_labels_become_controls_and_per_annotator_columns_their_answers(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    rows = [
        {"id": "c1", "text": "Gold post one on asylum", "lang": "en", "label": "pro", "label__amira": "pro"},
        {
            "id": "c2",
            "text": "Gold post two on borders",
            "lang": "en",
            "label": "2",
            "label__amira": "neutral",
        },
    ]
    assert _import(sessions, project, write_csv(tmp_path / "gold.csv", rows)) == 2
    with sessions() as session:
        assert _controls(session) == {
            "c1": ("pro", ControlSource.IMPORT, True),
            "c2": ("anti", ControlSource.IMPORT, True),
        }
        answers = session.execute(
            select(Item.external_id, User.username, Annotation.label)
            .join(Annotation, Annotation.item_id == Item.id)
            .join(User, User.id == Annotation.user_id)
        ).all()
        # The gold label is the control's, never an "import" user's label of the corpus.
        assert sorted(answers) == [("c1", "amira", "pro"), ("c2", "amira", "neutral")]
        assert session.scalar(select(func.count()).select_from(User).where(User.username == "import")) == 0


def test_posts_already_in_the_project_become_controls_by_id_or_text(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    seed = posts(3, prefix="seed")
    rows = [
        {"id": "seed0", "text": seed[0]["text"], "lang": "en", "label": "unrelated"},  # same id and text
        {"id": "other-id", "text": seed[1]["text"], "lang": "en", "label": "pro"},  # same text
    ]
    with session_scope(sessions) as session:  # an earlier, unmarked control takes the new gold label
        seed1 = session.scalar(select(Item.id).where(Item.external_id == "seed1"))
        session.add(ControlPost(item_id=seed1, label="anti", source=ControlSource.MANUAL, active=False))
    with sessions() as session:
        items_before = session.scalar(select(func.count()).select_from(Item))
    assert _import(sessions, project, write_csv(tmp_path / "gold.csv", rows)) == 2
    with sessions() as session:
        assert _controls(session) == {
            "seed0": ("unrelated", ControlSource.IMPORT, True),
            "seed1": ("pro", ControlSource.IMPORT, True),
        }
        assert session.scalar(select(func.count()).select_from(Item)) == items_before
        assert set(session.scalars(select(Item.duplicates))) == {0}  # naming a post is not collecting a copy


def test_a_control_without_a_label_refuses_the_whole_file(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    rows = [
        {"id": "c1", "text": "Gold post one on asylum", "lang": "en", "label": "pro"},
        {"id": "c2", "text": "Gold post two on borders", "lang": "en", "label": ""},
    ]
    path = write_csv(tmp_path / "gold.csv", rows)
    _assert_refused(sessions, project, path, "a control post needs its gold label")
    with pytest.raises(ImportValidationError) as caught, session_scope(sessions) as session:
        import_file(session, session.get(Project, project.id), path, options=CONTROLS, by=OPERATOR)  # type: ignore[arg-type]
    assert [(p.column, p.index) for p in caught.value.problems] == [("label", 1)]


def test_a_control_file_without_a_label_column_is_refused(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "gold.csv", [{"id": "c1", "text": "Gold post", "label__amira": "pro"}])
    _assert_refused(sessions, project, path, "gold answer from its label column")
    with pytest.raises(InputFileError), session_scope(sessions) as session:
        import_file(session, session.get(Project, project.id), path, options=CONTROLS, by=OPERATOR)  # type: ignore[arg-type]


def test_two_gold_labels_for_one_post_are_refused(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    seed = posts(3, prefix="seed")
    in_file = [
        {"id": "c1", "text": "Gold post one on asylum", "lang": "en", "label": "pro"},
        {"id": "c2", "text": "Gold post one on asylum", "lang": "en", "label": "anti"},
    ]
    _assert_refused(sessions, project, write_csv(tmp_path / "a.csv", in_file), "with the gold label 'pro'")
    in_project = [
        {"id": "x1", "text": seed[2]["text"], "lang": "en", "label": "pro"},
        {"id": "x2", "text": seed[2]["text"], "lang": "en", "label": "neutral"},
    ]
    _assert_refused(sessions, project, write_csv(tmp_path / "b.csv", in_project), "with the gold label 'pro'")


def test_an_id_of_the_project_with_another_text_is_still_refused(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    rows = [{"id": "seed0", "text": "A different text under an old id", "lang": "en", "label": "pro"}]
    _assert_refused(sessions, project, write_csv(tmp_path / "gold.csv", rows), "already in this project")
