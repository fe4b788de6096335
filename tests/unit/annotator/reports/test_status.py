from pathlib import Path

from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.corpus.ingest import import_file
from annotator.reports.status import project_status
from testing.factories import make_project, posts, write_csv


def test_counts_per_language_and_label(session: Session, tmp_path: Path) -> None:
    project = make_project(session)
    rows = posts(3, "en", "e", label="pro") + posts(2, "es", "s") + posts(1, "es", "x", label="anti")
    import_file(session, project, write_csv(tmp_path / "f.csv", rows), by=OPERATOR)
    status = project_status(session, project)
    assert (status.posts, status.labelled, status.imports) == (6, 4, 1)
    assert status.languages["en"].labels == {"pro": 3}
    assert status.languages["es"].pool == 3 and status.languages["es"].labelled == 1
