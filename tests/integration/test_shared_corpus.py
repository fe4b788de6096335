"""The study's real tweets (../shared, read in place): import, status, and an exact round trip."""

import csv
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from annotator.accounts.access import OPERATOR
from annotator.corpus.export import export_project
from annotator.corpus.formulas import restore
from annotator.corpus.ingest import ImportOptions, import_file
from annotator.corpus.projects import create_project
from annotator.reports.status import project_status
from db.engine import session_scope
from db.models import Annotation, Split

pytestmark = pytest.mark.shared_data


def test_train_and_test_import(sessions: sessionmaker[Session], shared_data: Path) -> None:
    with session_scope(sessions) as session:
        project = create_project(session, "study", languages=["en", "es"], by=OPERATOR)
        train = import_file(session, project, shared_data / "train.csv", by=OPERATOR)
        test = import_file(
            session,
            project,
            shared_data / "test.csv",
            options=ImportOptions(split=Split.EVAL),
            by=OPERATOR,
        )
    assert train.rows_read == 2625
    assert train.posts_added + train.duplicates == 2625 and train.duplicates > 0
    assert len(train.posts_per_language) == 12 and "id" in train.posts_per_language  # the study's `in`
    assert train.labels_added == train.posts_added
    assert test.rows_read == 875 and test.posts_added + test.duplicates == 875
    with sessions() as session:
        status = project_status(session, project)
        assert status.posts == train.posts_added + test.posts_added
        assert sum(c.eval for c in status.languages.values()) == test.posts_added
        assert session.scalar(select(func.count()).select_from(Annotation)) == status.labelled


def test_import_export_import_gives_the_same_rows(
    sessions: sessionmaker[Session], shared_data: Path, tmp_path: Path
) -> None:
    first, second = tmp_path / "first.parquet", tmp_path / "second.csv"
    with session_scope(sessions) as session:
        project = create_project(session, "a", by=OPERATOR)
        import_file(session, project, shared_data / "test.csv", by=OPERATOR)
        export_project(session, project, first, by=OPERATOR)
        copy = create_project(session, "b", by=OPERATOR)
        import_file(session, copy, first, by=OPERATOR)
        export_project(session, copy, tmp_path / "first.csv", by=OPERATOR)
        export_project(session, copy, second, by=OPERATOR)
    with (tmp_path / "first.csv").open(encoding="utf-8") as a, second.open(encoding="utf-8") as b:
        assert list(csv.DictReader(a)) == list(csv.DictReader(b))
    with second.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    with (shared_data / "test.csv").open(encoding="utf-8") as handle:
        original = {row["id"]: row for row in csv.DictReader(handle)}
    assert len(rows) > 800
    for row in rows:
        source = original[row["id"]]
        # The CSV is spreadsheet-safe: a tweet that starts with @ gets a leading apostrophe, which import removes.
        assert restore(row["text"]) == source["text"] and row["label"] == source["label"]
        assert not row["text"].startswith(("=", "+", "-", "@"))
        assert '"paper_multi"' in row["meta"]  # the study's predictions travel as metadata
