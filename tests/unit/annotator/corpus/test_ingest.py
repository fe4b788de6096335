"""Import: every bad input gives a message naming the problem and leaves the database unchanged."""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from annotator.accounts.access import OPERATOR
from annotator.corpus.ingest import ColumnMapping, ImportOptions, import_file
from annotator.errors import ImportValidationError, InputFileError, LingualoopError
from db.engine import session_scope
from db.models import Annotation, Item, LanguageSource, Project, Split, User
from testing.factories import make_project, posts, table_counts, write_csv, write_jsonl


@pytest.fixture
def project(sessions: sessionmaker[Session], tmp_path_factory: pytest.TempPathFactory) -> Project:
    with session_scope(sessions) as session:
        project = make_project(session)
        import_file(
            session,
            project,
            write_csv(tmp_path_factory.mktemp("seed") / "seed.csv", posts(3, prefix="seed")),
            by=OPERATOR,
        )
    return project


def _assert_rejected(
    sessions: sessionmaker[Session],
    project: Project,
    path: Path,
    expected: str,
    error: type[Exception] = LingualoopError,
    **kwargs: object,
) -> str:
    with sessions() as session:
        before = table_counts(session)
    with pytest.raises(error) as caught, session_scope(sessions) as session:
        import_file(session, session.get(Project, project.id), path, by=OPERATOR, **kwargs)  # type: ignore[arg-type]
    message = str(caught.value)
    assert expected in message
    with sessions() as session:
        assert table_counts(session) == before, "a rejected import must leave the database unchanged"
    return message


def test_imports_posts_labels_and_metadata(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    rows = [
        {"id": "a1", "text": "Refugees are welcome here", "lang": "EN", "label": "pro", "source": "x"},
        {"id": "a2", "text": "Cerrad las fronteras ya", "lang": "es", "label": "2", "source": ""},
        {"id": "a3", "text": "Il pleut à Paris aujourd'hui", "lang": "fr", "label": "", "source": "y"},
    ]
    with session_scope(sessions) as session:
        report = import_file(
            session, session.get(Project, project.id), write_csv(tmp_path / "f.csv", rows), by=OPERATOR
        )  # type: ignore[arg-type]
    assert (report.posts_added, report.labels_added, report.new_languages) == (3, 2, ["fr"])
    with sessions() as session:
        items = {i.external_id: i for i in session.scalars(select(Item).where(Item.external_id.like("a%")))}
        assert items["a1"].language == "en" and items["a1"].meta == {"source": "x"}
        assert items["a2"].meta == {}
        labels = dict(session.execute(select(Item.external_id, Annotation.label).join(Annotation)).all())
        assert labels == {"a1": "pro", "a2": "anti"}
        importer = session.scalar(select(User).where(User.username == "import"))
        assert importer is not None and importer.password_hash is None
        assert "fr" in session.get(Project, project.id).languages  # type: ignore[union-attr]


def test_missing_text_column(sessions: sessionmaker[Session], project: Project, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", [{"id": "1", "body_text": "hello"}])
    message = _assert_rejected(sessions, project, path, "no text column", InputFileError)
    assert "body_text" in message  # tells the researcher which columns there are


def test_named_text_column_that_does_not_exist(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "f.csv", [{"id": "1", "text": "hello"}])
    _assert_rejected(
        sessions,
        project,
        path,
        "no column 'tweet_text'",
        InputFileError,
        mapping=ColumnMapping(text="tweet_text"),
    )


@pytest.mark.parametrize("content", [b"", b"   \n", b"id,text,lang\n"])
def test_empty_file(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    _assert_rejected(sessions, project, path, "empty.csv", InputFileError)


def test_bytes_that_are_not_utf8(sessions: sessionmaker[Session], project: Project, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("id,text\n1,fine\n2,caf\u00e9 cr\u00e8me\n".encode("latin-1"))
    message = _assert_rejected(sessions, project, path, "not valid UTF-8", InputFileError)
    assert "line 3" in message and "0xe9" in message


def test_ten_megabyte_cell(sessions: sessionmaker[Session], project: Project, tmp_path: Path) -> None:
    rows = [
        *posts(2, prefix="ok"),
        {"id": "big", "text": "x" * (10 * 1024 * 1024), "lang": "en", "label": ""},
    ]
    message = _assert_rejected(
        sessions,
        project,
        write_csv(tmp_path / "big.csv", rows),
        "10,485,760 characters",
        ImportValidationError,
    )
    assert "line 4, column 'text'" in message


def test_empty_post(sessions: sessionmaker[Session], project: Project, tmp_path: Path) -> None:
    rows = [*posts(2, prefix="ok"), {"id": "blank", "text": "   ", "lang": "en", "label": ""}]
    _assert_rejected(
        sessions,
        project,
        write_csv(tmp_path / "f.csv", rows),
        "line 4, column 'text': the post is empty",
        ImportValidationError,
    )


def test_unknown_label(sessions: sessionmaker[Session], project: Project, tmp_path: Path) -> None:
    rows = [
        *posts(2, prefix="ok", label="pro"),
        {"id": "z", "text": "hmm", "lang": "en", "label": "positive"},
    ]
    message = _assert_rejected(
        sessions,
        project,
        write_csv(tmp_path / "f.csv", rows),
        "unknown label 'positive'",
        ImportValidationError,
    )
    assert "line 4, column 'label'" in message and "pro, anti, neutral, unrelated" in message


def test_unknown_language_code(sessions: sessionmaker[Session], project: Project, tmp_path: Path) -> None:
    rows = [*posts(2, prefix="ok"), {"id": "z", "text": "hmm", "lang": "xx", "label": ""}]
    message = _assert_rejected(
        sessions,
        project,
        write_csv(tmp_path / "f.csv", rows),
        "'xx' is not an ISO 639-1",
        ImportValidationError,
    )
    assert "line 4, column 'lang'" in message


def test_duplicate_ids_in_the_file(sessions: sessionmaker[Session], project: Project, tmp_path: Path) -> None:
    rows = [*posts(3, prefix="d"), {"id": "d1", "text": "another text entirely", "lang": "en", "label": ""}]
    message = _assert_rejected(
        sessions,
        project,
        write_csv(tmp_path / "f.csv", rows),
        "id 'd1' also appears at line 3",
        ImportValidationError,
    )
    assert "line 5" in message


def test_duplicate_ids_against_the_database(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    rows = [{"id": "seed1", "text": "a brand new text", "lang": "en", "label": ""}]
    _assert_rejected(
        sessions,
        project,
        write_csv(tmp_path / "f.csv", rows),
        "id 'seed1' is already in this project",
        ImportValidationError,
    )


def test_truncated_parquet(sessions: sessionmaker[Session], project: Project, tmp_path: Path) -> None:
    path = tmp_path / "posts.parquet"
    pq.write_table(pa.Table.from_pylist(posts(50, prefix="pq")), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _assert_rejected(sessions, project, path, "not a readable Parquet file", InputFileError)


def test_malformed_jsonl(sessions: sessionmaker[Session], project: Project, tmp_path: Path) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_text('{"id": "j1", "text": "ok"}\n{"id": "j2", "text": oops}\n', encoding="utf-8")
    _assert_rejected(sessions, project, path, "posts.jsonl, line 2: not valid JSON", InputFileError)


def test_lone_surrogate_in_jsonl(sessions: sessionmaker[Session], project: Project, tmp_path: Path) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_text(
        '{"id": "j1", "text": "ok"}\n{"id": "j2", "text": "bad \\ud800 text"}\n', encoding="utf-8"
    )
    _assert_rejected(sessions, project, path, "lone surrogate", ImportValidationError)


def test_csv_with_quoted_newlines_and_quotes(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    tricky = 'She said "welcome, friends"\nand meant it, "truly".'
    path = write_csv(
        tmp_path / "q.csv",
        [
            {"id": "q1", "text": tricky, "lang": "en", "label": "pro"},
            {"id": "q2", "text": "plain", "lang": "en", "label": ""},
        ],
    )
    with session_scope(sessions) as session:
        report = import_file(session, session.get(Project, project.id), path, by=OPERATOR)  # type: ignore[arg-type]
    assert report.posts_added == 2
    with sessions() as session:
        assert session.scalar(select(Item.text).where(Item.external_id == "q1")) == tricky


def test_wrong_number_of_fields_names_the_line(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    path = tmp_path / "f.csv"
    path.write_text("id,text,lang\n1,hello,en\n2,a,b,c\n", encoding="utf-8")
    _assert_rejected(sessions, project, path, "line 3: 4 field(s) where the header has 3", InputFileError)


def test_problems_are_all_listed(sessions: sessionmaker[Session], project: Project, tmp_path: Path) -> None:
    rows = [
        {"id": "e1", "text": "", "lang": "en"},
        {"id": "e2", "text": "x", "lang": "zz"},
        {"id": "e3", "text": "fine", "lang": "en"},
    ]
    error = _assert_rejected(
        sessions,
        project,
        write_csv(tmp_path / "f.csv", rows),
        "2 row(s) failed validation",
        ImportValidationError,
    )
    assert "line 2" in error and "line 3" in error


def test_skip_invalid_imports_the_valid_rows(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    rows = [{"id": "s1", "text": "", "lang": "en"}, {"id": "s2", "text": "good post", "lang": "en"}]
    with session_scope(sessions) as session:
        report = import_file(
            session,
            session.get(Project, project.id),
            write_csv(tmp_path / "f.csv", rows),  # type: ignore[arg-type]
            options=ImportOptions(skip_invalid=True),
            by=OPERATOR,
        )
    assert (report.posts_added, report.rows_skipped) == (1, 1)
    assert "the post is empty" in str(report.problems[0])


def test_duplicate_texts_collapse_and_are_counted(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    rows = [
        {"id": "r1", "text": "Open the borders https://t.co/abc", "lang": "en"},
        {"id": "r2", "text": "RT @someone: open   the BORDERS https://t.co/xyz", "lang": "en"},
        {"id": "r3", "text": "Post number 0 about seed and borders", "lang": "en"},  # same text as seed0
    ]
    with session_scope(sessions) as session:
        report = import_file(
            session, session.get(Project, project.id), write_csv(tmp_path / "f.csv", rows), by=OPERATOR
        )  # type: ignore[arg-type]
    assert (report.posts_added, report.duplicates_in_file, report.duplicates_in_project) == (1, 1, 1)
    with sessions() as session:
        counts = dict(session.execute(select(Item.external_id, Item.duplicates)).all())
    assert counts["r1"] == 1 and counts["seed0"] == 1 and "r2" not in counts


def test_a_file_without_ids_imported_again_is_counted_not_rejected(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    rows = [
        {"text": "Open the borders now", "lang": "en"},
        {"text": "open the BORDERS   now", "lang": "en"},  # the same post, written differently
        {"text": "Refugees are welcome in our town", "lang": "en"},
    ]
    path = write_csv(tmp_path / "no-ids.csv", rows, columns=["text", "lang"])
    with session_scope(sessions) as session:
        first = import_file(session, session.get(Project, project.id), path, by=OPERATOR)  # type: ignore[arg-type]
    assert (first.posts_added, first.duplicates_in_file, first.duplicates_in_project) == (2, 1, 0)
    with session_scope(sessions) as session:
        again = import_file(session, session.get(Project, project.id), path, by=OPERATOR)  # type: ignore[arg-type]
    assert (again.posts_added, again.duplicates_in_project, again.problems) == (0, 3, [])


def test_languages_are_detected_where_missing(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    rows = [
        {"id": "l1", "text": "El gobierno aprobó hoy la nueva ley de inmigración y asilo"},
        {"id": "l2", "text": "The government passed the new immigration and asylum law today"},
    ]
    with session_scope(sessions) as session:
        report = import_file(
            session, session.get(Project, project.id), write_csv(tmp_path / "f.csv", rows), by=OPERATOR
        )  # type: ignore[arg-type]
    assert report.languages_detected == 2
    with sessions() as session:
        found = {
            i.external_id: i for i in session.scalars(select(Item).where(Item.external_id.in_(["l1", "l2"])))
        }
    assert found["l1"].language == "es" and found["l2"].language == "en"
    assert found["l1"].language_source == LanguageSource.DETECTED
    assert found["l1"].language_confidence is not None and 0 < found["l1"].language_confidence <= 1


def test_jsonl_and_parquet_and_eval_split(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    jsonl = write_jsonl(
        tmp_path / "p.jsonl", [{"id": 7, "text": "numeric id", "lang": "en", "extra": {"k": 1}}]
    )
    parquet = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist(posts(2, prefix="pq", label="neutral")), parquet)
    with session_scope(sessions) as session:
        target = session.get(Project, project.id)
        assert target is not None
        import_file(session, target, jsonl, by=OPERATOR)
        report = import_file(
            session,
            target,
            parquet,
            options=ImportOptions(split=Split.EVAL, annotator="gold"),
            by=OPERATOR,
        )
    assert report.labels_added == 2
    with sessions() as session:
        seven = session.scalar(select(Item).where(Item.external_id == "7"))
        assert seven is not None and seven.meta == {"extra": '{"k": 1}'}
        splits = set(session.scalars(select(Item.split).where(Item.external_id.like("pq%"))))
        assert splits == {Split.EVAL}


def test_a_crash_mid_import_rolls_everything_back(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "f.csv", posts(50, prefix="crash", label="pro"))

    def crash(phase: str, done: int, total: int) -> None:
        if phase == "saving labels":
            raise KeyboardInterrupt  # the researcher pressed Ctrl-C after the posts were written

    with sessions() as session:
        before = table_counts(session)
    with pytest.raises(KeyboardInterrupt), session_scope(sessions) as session:
        import_file(session, session.get(Project, project.id), path, progress=crash, by=OPERATOR)  # type: ignore[arg-type]
    with sessions() as session:
        assert table_counts(session) == before


def test_labels_of_collapsed_duplicates_are_kept(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    rows = [
        {"id": "d1", "text": "Hello world of borders", "label": "", "label__ann": "pro"},
        {"id": "d2", "text": "hello  WORLD of borders", "label": "anti", "label__ann": "neutral"},
        {
            "id": "d3",
            "text": "Post number 1 about seed and borders",
            "label": "unrelated",
            "label__ann": "pro",
        },
    ]
    path = write_csv(tmp_path / "f.csv", rows)
    with session_scope(sessions) as session:
        report = import_file(
            session,
            session.get(Project, project.id),
            path,  # type: ignore[arg-type]
            mapping=ColumnMapping(label="label"),
            by=OPERATOR,
        )
    assert report.posts_added == 1 and report.duplicates == 2
    assert (
        report.labels_added == 4
    )  # d1: ann=pro (first wins) + import=anti; seed1: import=unrelated, ann=pro
    with sessions() as session:
        given = set(
            session.execute(
                select(Item.external_id, User.username, Annotation.label)
                .join(Annotation, Annotation.item_id == Item.id)
                .join(User, User.id == Annotation.user_id)
            ).all()
        )
    assert {
        ("d1", "ann", "pro"),
        ("d1", "import", "anti"),
        ("seed1", "import", "unrelated"),
        ("seed1", "ann", "pro"),
    } <= given


def test_nul_in_any_column_is_named(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text(
        '{"id": "a\\u0000b", "text": "fine"}\n{"id": "c", "text": "ok", "src": "x\\ud800"}\n',
        encoding="utf-8",
    )
    message = _assert_rejected(
        sessions, project, path, "line 1, column 'id': the cell contains a NUL", ImportValidationError
    )
    assert "line 2, column 'src'" in message and "lone surrogate" in message


def test_skip_invalid_with_nothing_valid_still_says_why(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    rows = [{"id": "x1", "text": "a", "lang": "xx"}, {"id": "x2", "text": "b", "lang": "yy"}]
    _assert_rejected(
        sessions,
        project,
        write_csv(tmp_path / "f.csv", rows),
        "'xx' is not an ISO 639-1",
        ImportValidationError,
        options=ImportOptions(skip_invalid=True),
    )
