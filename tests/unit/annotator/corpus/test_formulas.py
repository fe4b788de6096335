"""CSV exports neutralise formula-like cells; importing a lingualoop export gives the original text back."""

import csv
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.corpus.export import export_project
from annotator.corpus.formulas import neutralise, restore
from annotator.corpus.ingest import import_file
from annotator.corpus.projects import create_project
from db.models import Item
from testing.factories import make_project, write_csv


@given(st.text(alphabet=st.sampled_from("'=+-@\t\rab1 "), max_size=8) | st.text(max_size=30))
def test_restore_undoes_neutralise(value: str) -> None:
    out = neutralise(value)
    assert isinstance(out, str) and not out.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert restore(out) == value


def test_dangerous_cells_are_neutralised_and_come_back_on_import(session: Session, tmp_path: Path) -> None:
    texts = [
        '=HYPERLINK("http://evil.example","click")',
        "@user thanks for the welcome",
        "+1 to more asylum places",
        "-5 degrees at the border crossing",
        "'=already quoted",
        "plain text",
    ]
    project = make_project(session)
    rows = [{"id": f"p{i}", "text": text, "lang": "en", "label": ""} for i, text in enumerate(texts)]
    import_file(session, project, write_csv(tmp_path / "in.csv", rows), by=OPERATOR)
    out = tmp_path / "out.csv"
    export_project(session, project, out, by=OPERATOR)
    with out.open(encoding="utf-8", newline="") as handle:
        exported = {row["id"]: row["text"] for row in csv.DictReader(handle)}
    assert (
        exported["p0"].startswith("'=") and exported["p1"].startswith("'@") and exported["p5"] == "plain text"
    )
    assert exported["p4"] == "''=already quoted"
    copy = create_project(session, "copy", languages=["en"], by=OPERATOR)
    import_file(session, copy, out, by=OPERATOR)
    back = set(session.scalars(select(Item.text).where(Item.project_id == copy.id)))
    assert back == set(texts)


def test_an_ordinary_csv_keeps_its_apostrophes(session: Session, tmp_path: Path) -> None:
    project = make_project(session)
    import_file(
        session,
        project,
        write_csv(tmp_path / "in.csv", [{"id": "a", "text": "'@quoted on purpose", "lang": "en"}]),
        by=OPERATOR,
    )
    assert session.scalar(select(Item.text)) == "'@quoted on purpose"
