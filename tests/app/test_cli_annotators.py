"""`lingualoop annotators`: the report as a table and as JSON, excluding and including an annotator, admitting one
who is qualifying and the label-quality settings, each refusal a clear line that changes nothing."""

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user
from annotator.annotation.annotate import Answer, record_answer
from annotator.corpus.ingest import import_file
from annotator.corpus.projects import get_project
from annotator.quality.controls import mark_control
from core.labels import LABELS
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import upgrade
from db.models import Item
from testing.factories import make_project, posts, write_csv
from tests.app.test_cli import run


@pytest.fixture
def url(tmp_path: Path) -> str:
    database_url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(database_url)
    upgrade(engine)
    with session_scope(make_session_factory(engine)) as session:
        make_project(session, languages=("en",))
    engine.dispose()
    return database_url


def seed(database_url: str, tmp_path: Path) -> None:
    """Ten English controls answered by 'careful' (all right) and 'spammer' (all 'unrelated'), and two by
    'late'."""
    engine = make_engine(database_url)
    with session_scope(make_session_factory(engine)) as session:
        project = get_project(session, "study")
        import_file(session, project, write_csv(tmp_path / "p.csv", posts(10)), by=OPERATOR)
        people = {name: add_user(session, name, by=OPERATOR) for name in ("careful", "spammer", "late")}
        for i, item_id in enumerate(session.scalars(select(Item.id).order_by(Item.id))):
            gold = LABELS[i % 3]
            mark_control(session, project, OPERATOR, item_id, gold)
            for name, label in (("careful", gold), ("spammer", "unrelated"), ("late", gold)):
                if name != "late" or i < 2:
                    record_answer(
                        session,
                        project,
                        people[name],
                        item_id,
                        Answer.of_label(label),
                        queue_fast_retrain=False,
                    )
    engine.dispose()


def report(database_url: str, *args: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(run(database_url, "annotators", "--json", *args))
    return found


def rows(database_url: str) -> dict[str, dict[str, Any]]:
    return {row["username"]: row for row in report(database_url)["annotators"]}


def test_an_empty_project_says_what_comes(url: str) -> None:
    output = run(url, "annotators")
    assert "No annotator has answered yet" in output and "Controls: none" in output
    assert report(url)["annotators"] == []


def test_the_table_and_the_json(url: str, tmp_path: Path) -> None:
    seed(url, tmp_path)
    table = run(url, "annotators")
    assert "English (en)" in table and "careful" in table and "spammer" in table
    assert "(72-100)" in table and "FLAG" in table  # 100% right, with its interval
    assert "spammer: flagged: Right on 0 of 10 control posts" in table
    found = report(url)
    assert found["controls"] == {"en": 10} and found["settings"]["aggregation"] == "reliability"
    by_name = {row["username"]: row for row in found["annotators"]}
    careful, spammer, late = by_name["careful"], by_name["spammer"], by_name["late"]
    assert (careful["control_answers"], careful["control_correct"], careful["control_accuracy"]) == (
        10,
        10,
        1.0,
    )
    low, high = careful["control_interval"]
    assert 0.6 < low < 0.8 and high == 1.0
    assert spammer["control_accuracy"] == 0.0 and "0 of 10 control posts" in spammer["flag"]
    assert careful["flag"] is None and late["control_accuracy"] is None and late["control_interval"] is None
    assert len(careful["confusion"]) == 4 and all(len(r) == 4 for r in careful["confusion"])


def test_exclude_and_include(url: str, tmp_path: Path) -> None:
    seed(url, tmp_path)
    output = run(url, "annotators", "--exclude", "spammer", "--note", "random labels")
    assert "now left out of training and consensus" in output
    spammer = rows(url)["spammer"]
    assert spammer["excluded"] and spammer["exclusion_note"] == "random labels"
    assert "count again" in run(url, "annotators", "--include", "spammer")
    assert not rows(url)["spammer"]["excluded"]
    refused = run(url, "annotators", "--exclude", "nobody", "--note", "x", ok=False)
    assert "Error:" in refused and "nobody" in refused and "Traceback" not in refused


def test_settings_and_admission(url: str, tmp_path: Path) -> None:
    seed(url, tmp_path)
    refused = run(url, "annotators", "--controls-rate", "1.5", "--qualification", ok=False)
    assert "control rate must be a share between 0 and 1" in refused and "1.5" in refused
    assert report(url)["settings"]["qualification"] is False  # nothing of the refused command was saved
    output = run(
        url, "annotators", "--qualification", "--qualification-controls", "5", "--controls-rate", "0.1"
    )
    assert (
        "Label-quality settings saved" in output and "Qualification: on (5 controls, 70% to pass)" in output
    )
    settings = report(url)["settings"]
    assert (settings["qualification"], settings["qualification_controls"], settings["control_rate"]) == (
        True,
        5,
        0.1,
    )
    assert rows(url)["late"]["qualification"] != "admitted"
    assert "Say which language" in run(url, "annotators", "--admit", "late", ok=False)
    assert "admitted to label English (en)" in run(url, "annotators", "--admit", "late", "--language", "en")
    assert rows(url)["late"]["qualification"] == "admitted"
    assert "Unknown aggregation" in run(url, "annotators", "--aggregation", "median", ok=False)


def test_model_votes_setting(url: str, tmp_path: Path) -> None:
    seed(url, tmp_path)
    assert "Model votes: none yet" in run(url, "annotators")  # no fast version has voted yet
    assert report(url)["settings"]["model_votes"] is True and report(url)["voting_version"] is None
    output = run(url, "annotators", "--no-model-votes")
    assert "Label-quality settings saved" in output and "Model votes: off" in output
    assert report(url)["settings"]["model_votes"] is False
    assert "Model votes: none yet" in run(url, "annotators", "--model-votes")
