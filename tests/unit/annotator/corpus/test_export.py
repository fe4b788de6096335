"""Export: consensus and per-annotator labels, predictions, datasheet, and import -> export -> import."""

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user
from annotator.corpus.export import export_project
from annotator.corpus.ingest import import_file
from annotator.corpus.projects import create_project
from annotator.errors import LingualoopError
from annotator.quality.guidelines import set_guideline
from db.engine import session_scope
from db.models import (
    Adjudication,
    Annotation,
    AnnotationKind,
    AnnotationSource,
    AnnotatorExclusion,
    ControlPost,
    ControlSource,
    Item,
    ModelStatus,
    ModelVersion,
    Prediction,
    Project,
    User,
    prediction_row,
)
from testing.factories import make_project, write_csv

ROWS = [
    {
        "id": "e1",
        "text": 'Welcome refugees, "all of them",\nplease',
        "lang": "en",
        "label": "pro",
        "split": "pool",
    },
    {"id": "e2", "text": "مرحبا باللاجئين", "lang": "ar", "label": "", "split": "pool"},
    {"id": "e3", "text": "Cierren la frontera", "lang": "es", "label": "anti", "split": "eval"},
    {"id": "e4", "text": "=cmd|' /C calc'!A0", "lang": "en", "label": "unrelated", "split": "pool"},
]


def _read(path: Path) -> list[dict[str, object]]:
    if path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return pq.read_table(path).to_pylist()


def _label(session: Session, item_id: int, user_id: int, label: str | None, kind: AnnotationKind) -> None:
    session.add(
        Annotation(item_id=item_id, user_id=user_id, label=label, kind=kind, source=AnnotationSource.APP)
    )


@pytest.fixture
def project(sessions: sessionmaker[Session], tmp_path: Path) -> Project:
    with session_scope(sessions) as session:
        project = make_project(session)
        import_file(session, project, write_csv(tmp_path / "in.csv", ROWS), by=OPERATOR)
        ids = dict(session.execute(select(Item.external_id, Item.id)).all())
        alice = add_user(session, "alice", password="correct horse", by=OPERATOR)
        bob = add_user(session, "bob", password="battery staple", by=OPERATOR)
        _label(session, ids["e1"], alice.id, "pro", AnnotationKind.LABEL)
        _label(session, ids["e2"], alice.id, "pro", AnnotationKind.LABEL)
        _label(session, ids["e2"], bob.id, "neutral", AnnotationKind.LABEL)
        _label(session, ids["e3"], bob.id, None, AnnotationKind.SKIP)  # a skip is not a label
        session.flush()
        session.add(Adjudication(item_id=ids["e2"], label="neutral", user_id=alice.id, note="context"))
    return project


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_export_rows(sessions: sessionmaker[Session], project: Project, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"out{suffix}"
    with session_scope(sessions) as session:
        stats = export_project(
            session,
            session.get(Project, project.id),
            out,
            datasheet=tmp_path / "sheet.md",
            by=OPERATOR,
        )  # type: ignore[arg-type]
    rows = {str(row["id"]): row for row in _read(out)}
    assert stats.rows == 4 and set(rows) == {"e1", "e2", "e3", "e4"}
    assert rows["e1"]["text"] == ROWS[0]["text"]
    # The default aggregation is the reliability model's (db/consensus.py): its posterior and probability.
    assert rows["e1"]["label"] == "pro" and rows["e1"]["label_source"] == "reliability"
    assert 0.5 < float(rows["e1"]["label_probability"]) <= 1.0  # type: ignore[arg-type]
    assert rows["e2"]["label"] == "neutral" and rows["e2"]["label_source"] == "adjudicated"
    assert rows["e2"]["label__alice"] == "pro" and rows["e2"]["label__bob"] == "neutral"
    assert rows["e3"]["label"] == "anti" and rows["e3"]["split"] == "eval"
    assert rows["e3"]["label__bob"] in (None, "")  # the skip is not exported as a label
    sheet = (tmp_path / "sheet.md").read_text(encoding="utf-8")
    assert "| ar (Arabic) | 0 | 0 | 1 | 0 | 0 | 1 |" in sheet
    assert "| alice | 2 |" in sheet and "Posts labelled by two or more annotators: 2." in sheet


def test_round_trip_gives_the_same_rows_and_labels(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    with session_scope(sessions) as session:
        export_project(session, session.get(Project, project.id), first, by=OPERATOR)  # type: ignore[arg-type]
    with session_scope(sessions) as session:
        copy = create_project(session, "copy", by=OPERATOR)
        report = import_file(session, copy, first, by=OPERATOR)
        assert report.posts_added == 4
    with session_scope(sessions) as session:
        copy = session.scalar(select(Project).where(Project.name == "copy"))
        export_project(session, copy, second, by=OPERATOR)  # type: ignore[arg-type]
    before = {row["id"]: row for row in _read(first)}
    after = {row["id"]: row for row in _read(second)}
    assert before.keys() == after.keys()
    for key, row in before.items():
        for column in ("text", "lang", "split", "label__alice", "label__bob", "label__import"):
            assert after[key][column] == row[column], (key, column)
    # e2's adjudication lives in the source project; the copy has its two disagreeing labels.
    assert after["e2"]["label_source"] == "reliability" and after["e1"]["label"] == before["e1"]["label"]


def test_predictions_of_the_current_version(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    with session_scope(sessions) as session:
        version = ModelVersion(
            project_id=project.id,
            backend="fast",
            base_model="test",
            status=ModelStatus.READY,
            is_current=True,
            metrics={"all": {"macro_f1": 0.5}},
        )
        session.add(version)
        session.flush()
        e1 = session.scalar(select(Item.id).where(Item.external_id == "e1"))
        session.add(Prediction(**prediction_row(version.id, e1, [0.7, 0.1, 0.1, 0.1])))
    out = tmp_path / "p.csv"
    with session_scope(sessions) as session:
        export_project(
            session,
            session.get(Project, project.id),
            out,
            with_predictions=True,  # type: ignore[arg-type]
            datasheet=tmp_path / "s.md",
            by=OPERATOR,
        )
    rows = {row["id"]: row for row in _read(out)}
    assert rows["e1"]["predicted"] == "pro" and float(rows["e1"]["p_pro"]) == pytest.approx(0.7)  # type: ignore[arg-type]
    assert rows["e2"]["predicted"] == ""
    assert "| fast | test | ready | yes | 0.500 |" in (tmp_path / "s.md").read_text(encoding="utf-8")


def _ready_version(session: Session, project: Project, probabilities: dict[str, list[float]]) -> int:
    version = ModelVersion(
        project_id=project.id, backend="fast", base_model="test", status=ModelStatus.READY, metrics={}
    )
    session.add(version)
    session.flush()
    ids = dict(session.execute(select(Item.external_id, Item.id)).all())
    for external_id, values in probabilities.items():
        session.add(Prediction(**prediction_row(version.id, ids[external_id], values)))
    return version.id


def test_predictions_of_a_chosen_version_include_eval_posts(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    with session_scope(sessions) as session:
        target = session.get(Project, project.id)
        assert target is not None
        older = _ready_version(session, target, {"e1": [0.1, 0.7, 0.1, 0.1], "e3": [0.1, 0.6, 0.2, 0.1]})
        newer = _ready_version(session, target, {"e1": [0.9, 0.05, 0.03, 0.02]})
        session.get(ModelVersion, newer).is_current = True  # type: ignore[union-attr]
    out, sheet = tmp_path / "v.csv", tmp_path / "v.md"
    with session_scope(sessions) as session:
        stats = export_project(
            session,
            session.get(Project, project.id),  # type: ignore[arg-type]
            out,
            with_predictions=True,
            version_id=older,
            datasheet=sheet,
            by=OPERATOR,
        )
    rows = {row["id"]: row for row in _read(out)}
    assert stats.predictions_version == older
    assert rows["e1"]["model_version"] == str(older) and rows["e1"]["predicted"] == "anti"
    assert rows["e3"]["split"] == "eval" and rows["e3"]["predicted"] == "anti"  # an eval post's prediction
    assert rows["e2"]["predicted"] == ""
    assert f"hold version {older}'s probabilities" in sheet.read_text(encoding="utf-8")


@pytest.mark.parametrize("which", ["missing", "failed", "other project"])
def test_an_unusable_version_is_refused_before_any_file(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path, which: str
) -> None:
    with session_scope(sessions) as session:
        target = session.get(Project, project.id)
        assert target is not None
        ready = _ready_version(session, target, {"e1": [0.7, 0.1, 0.1, 0.1]})
        other = make_project(session, "other")
        broken = ModelVersion(
            project_id=other.id if which == "other project" else target.id,
            backend="fast",
            base_model="test",
            status=ModelStatus.FAILED,
        )
        session.add(broken)
        session.flush()
        asked = 999 if which == "missing" else broken.id
    out = tmp_path / "refused.csv"
    with session_scope(sessions) as session, pytest.raises(LingualoopError) as refused:
        export_project(
            session,
            session.get(Project, project.id),  # type: ignore[arg-type]
            out,
            with_predictions=True,
            version_id=asked,
            by=OPERATOR,
        )
    message = str(refused.value)
    assert f"Model version {asked} " in message and f"Ready versions of project 'study': {ready}." in message
    assert ("failed, not ready" in message) == (which == "failed")
    assert not out.exists()


def test_failed_export_leaves_no_file(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    out = tmp_path / "out.csv"

    def crash(done: int) -> None:
        raise RuntimeError("disk full")

    with sessions() as session, pytest.raises(RuntimeError):
        import annotator.corpus.export as export_module

        original = export_module._BATCH
        export_module._BATCH = 1  # report progress after every row, so the crash comes mid-file
        try:
            export_project(session, session.get(Project, project.id), out, progress=crash, by=OPERATOR)  # type: ignore[arg-type]
        finally:
            export_module._BATCH = original
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


def _provenance(session: Session, project: Project, tmp_path: Path) -> None:
    """Six English control posts (alice right on five, bob on none of his one), a Spanish label given from
    Label Studio under the Spanish guideline's second version, and bob's labels excluded."""
    import_file(
        session,
        project,
        write_csv(
            tmp_path / "gold.csv", [{"id": f"g{i}", "text": f"Gold post {i}", "lang": "en"} for i in range(6)]
        ),
        by=OPERATOR,
    )
    ids = dict(session.execute(select(Item.external_id, Item.id)).all())
    users = dict(session.execute(select(User.username, User.id)).all())
    for i in range(6):
        session.add(ControlPost(item_id=ids[f"g{i}"], label="anti", source=ControlSource.MANUAL))
        _label(session, ids[f"g{i}"], users["alice"], "anti" if i else "pro", AnnotationKind.LABEL)
    _label(session, ids["g0"], users["bob"], "neutral", AnnotationKind.LABEL)
    set_guideline(session, project, OPERATOR, "Versión uno.", "es")
    spanish = set_guideline(session, project, OPERATOR, "Versión dos.", "es")
    session.add(
        Annotation(
            item_id=ids["e3"],
            user_id=users["alice"],
            label="anti",
            kind=AnnotationKind.LABEL,
            source=AnnotationSource.LABELSTUDIO,
            guideline_id=spanish.id,
            seconds=3.456,
        )
    )
    session.add(AnnotatorExclusion(project_id=project.id, user_id=users["bob"], note="random labels | twice"))
    session.flush()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_provenance_controls_and_label_quality(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path, suffix: str
) -> None:
    out, sheet = tmp_path / f"out{suffix}", tmp_path / "sheet.md"
    with session_scope(sessions) as session:
        target = session.get(Project, project.id)
        assert target is not None
        _provenance(session, target, tmp_path)
        export_project(session, target, out, datasheet=sheet, by=OPERATOR)
    rows = {str(row["id"]): row for row in _read(out)}
    e3 = rows["e3"]
    assert (e3["label"], e3["source__alice"], e3["guideline__alice"]) == ("anti", "labelstudio", "es v2")
    assert float(e3["seconds__alice"]) == pytest.approx(3.46)  # type: ignore[arg-type]
    assert rows["e1"]["source__alice"] == "app" and rows["e1"]["guideline__alice"] in ("", None)
    assert str(rows["e1"]["is_control"]) == "False" and rows["e1"]["control_label"] in ("", None)
    g0 = rows["g0"]
    assert (g0["label"], g0["label_source"], float(g0["label_probability"])) == ("anti", "control", 1.0)  # type: ignore[arg-type]
    assert str(g0["is_control"]) == "True" and g0["control_label"] == "anti"
    assert (g0["label__alice"], g0["label__bob"]) == ("pro", "neutral")  # answers on controls, bob's kept
    text = sheet.read_text(encoding="utf-8")
    assert "Aggregation: **reliability**" in text
    assert "| en (English) | alice | 6 | 5 of 6 right (83%; 95% interval 44% to 97%) |" in text
    assert "| en (English) | bob | 1 | not measured yet (fewer than 5 control answers) |" in text
    assert "| bob | operator |" in text and "| random labels / twice |" in text
    assert (
        "Labels per guideline version shown" in text
        and "es v2 1, unknown (before versioned guidelines) 13" in text
    )


def test_a_majority_vote_project_exports_the_vote_and_its_share(
    sessions: sessionmaker[Session], project: Project, tmp_path: Path
) -> None:
    out, sheet = tmp_path / "out.csv", tmp_path / "sheet.md"
    with session_scope(sessions) as session:
        target = session.get(Project, project.id)
        assert target is not None
        target.quality = {"aggregation": "majority"}
        ids = dict(session.execute(select(Item.external_id, Item.id)).all())
        carol = add_user(session, "carol", by=OPERATOR)
        _label(session, ids["e3"], carol.id, "pro", AnnotationKind.LABEL)  # e3: imported anti, carol pro
        session.flush()
        export_project(session, target, out, datasheet=sheet, by=OPERATOR)
    rows = {str(row["id"]): row for row in _read(out)}
    assert (rows["e3"]["label"], rows["e3"]["label_source"], rows["e3"]["agreement"]) == ("", "tie", "0.5")
    assert (rows["e1"]["label_source"], rows["e1"]["label_probability"]) == ("unanimous", "1.0")
    assert rows["e2"]["label_source"] == "adjudicated" and rows["e2"]["agreement"] == "0.5"
    assert (rows["e4"]["label"], rows["e4"]["label_source"], rows["e4"]["label_probability"]) == (
        "unrelated",
        "single",
        "1.0",
    )
    assert "Aggregation: **majority**" in sheet.read_text(encoding="utf-8")
    assert "No annotator has labelled a control post yet." in sheet.read_text(encoding="utf-8")
