"""Every page of the Streamlit app through AppTest, on a real SQLite database with the demo project; the role
checks in the navigation and in the domain functions behind it."""

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import streamlit as st
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker
from streamlit.testing.v1 import AppTest

from annotator.accounts.access import OPERATOR
from annotator.annotation.annotate import Answer, record_answer
from annotator.demo import create_demo_project
from annotator.quality.guidelines import guideline_for
from core.labels import LABELS
from db.engine import make_engine, make_session_factory, session_scope
from db.migrate import upgrade
from db.models import (
    Adjudication,
    Assignment,
    FlagDecision,
    FlagReview,
    Item,
    Job,
    JobKind,
    JobStatus,
    ModelStatus,
    ModelVersion,
    Prediction,
    Project,
    Split,
    User,
    prediction_row,
)
from db.versions import consensus_posts, write_predictions

MAIN = str(Path(__file__).parents[2] / "app" / "main.py")
PAGES = Path(__file__).parents[2] / "app" / "app_pages"


@pytest.fixture
def demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[sessionmaker[Session], dict[str, str]]]:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("LINGUALOOP_DATABASE_URL", url)
    monkeypatch.setenv("LINGUALOOP_DATA_DIR", str(tmp_path / "data"))
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        passwords = create_demo_project(session, by=OPERATOR).passwords
    st.cache_resource.clear()  # the app builds its database once per server: a new one for each test
    st.cache_data.clear()
    yield sessions, passwords
    st.cache_resource.clear()
    st.cache_data.clear()
    engine.dispose()


def user_id(sessions: sessionmaker[Session], name: str) -> int:
    with sessions() as session:
        found = session.scalar(select(User.id).where(User.username == name))
        assert found is not None
        return found


def signed_in(sessions: sessionmaker[Session], name: str) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.session_state["user_id"] = user_id(sessions, name)
    return at.run()


def test_sign_in_with_a_wrong_then_the_right_password(
    demo: tuple[sessionmaker[Session], dict[str, str]],
) -> None:
    sessions, passwords = demo
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    at.text_input(key="login_username").input("amira")
    at.text_input(key="login_password").input("not it")
    at.button[0].click().run()
    assert "Unknown username or wrong password" in at.error[0].value and "user_id" not in at.session_state
    at.text_input(key="login_password").input(passwords["amira"])
    at.button[0].click().run()
    assert at.session_state["user_id"] == user_id(sessions, "amira")
    assert panel_data(at)["post"]["text"]  # the annotate page, with a post


def panel_data(at: AppTest) -> dict[str, Any]:
    """What the annotate page sent to its answer panel (a custom component, which AppTest cannot press: the
    keyboard is tested in chromium, tests/browser/)."""
    [panel] = [node for node in at.main if getattr(node, "type", None) == "bidi_component"]
    return dict(json.loads(panel.proto.json))


def test_annotate_page_gives_the_panel_the_leased_post_and_four_keyed_labels(
    demo: tuple[sessionmaker[Session], dict[str, str]],
) -> None:
    sessions, _ = demo
    at = signed_in(sessions, "amira")
    assert not at.exception
    data = panel_data(at)
    amira = user_id(sessions, "amira")
    with sessions() as session:
        lease = session.get(Assignment, data["post"]["lease_id"])
        assert lease is not None and lease.user_id == amira and lease.item_id == data["post"]["item_id"]
        item = session.get(Item, lease.item_id)
        assert item is not None and data["post"]["text"] == item.text
    assert [(label["code"], label["key"]) for label in data["labels"]] == [
        ("pro", "1"),
        ("anti", "2"),
        ("neutral", "3"),
        ("unrelated", "4"),
    ]
    assert len({label["color"] for label in data["labels"]}) == 4
    assert data["suggestion"] is None  # hidden until asked for: no anchoring
    at.toggle(key="show_suggestion").set_value(True).run()
    assert panel_data(at)["suggestion"] == "No model has scored this post yet."
    assert panel_data(at)["post"] == data["post"]  # the same post and lease after a rerun


def test_annotator_sees_only_the_annotate_page(demo: tuple[sessionmaker[Session], dict[str, str]]) -> None:
    sessions, _ = demo
    at = signed_in(sessions, "amira")
    for page in ("overview", "models", "retrain", "export", "users"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(str(PAGES / f"{page}.py"))


def test_empty_state_says_why(demo: tuple[sessionmaker[Session], dict[str, str]]) -> None:
    sessions, _ = demo
    with session_scope(sessions) as session:
        amira = session.scalar(select(User).where(User.username == "amira"))
        assert amira is not None
        amira.languages = ["xx"]  # a language without posts
    at = signed_in(sessions, "amira")
    assert "Nothing to label right now" in at.subheader[0].value


@pytest.mark.parametrize(
    "page",
    [
        "overview",
        "agreement",
        "adjudicate",
        "flags",
        "models",
        "findings",
        "retrain",
        "sampling",
        "import_posts",
        "export",
        "users",
        "labelstudio",
    ],
)
def test_every_researcher_page_renders(demo: tuple[sessionmaker[Session], dict[str, str]], page: str) -> None:
    sessions, _ = demo
    at = signed_in(sessions, "admin").switch_page(str(PAGES / f"{page}.py")).run()
    assert not at.exception, at.exception
    assert at.title, "every page has a title"


def test_retrain_button_queues_a_job_and_shows_it(demo: tuple[sessionmaker[Session], dict[str, str]]) -> None:
    sessions, _ = demo
    at = signed_in(sessions, "admin").switch_page(str(PAGES / "retrain.py")).run()
    at.button(key="retrain").click().run()
    at.button(key="retrain_fast").click().run()
    with sessions() as session:
        kinds = sorted(str(k) for k in session.scalars(select(Job.kind)))
    assert kinds == [JobKind.FAST_RETRAIN.value, JobKind.RETRAIN.value]
    texts = [p.proto.text for p in at.get("progress")]
    assert any(t.startswith("Job 2 · fast_retrain · queued") for t in texts), texts
    assert any(c.value.startswith("asked by admin at ") for c in at.caption), [c.value for c in at.caption]


def test_the_retrain_page_chooses_the_model_a_retrain_trains(
    demo: tuple[sessionmaker[Session], dict[str, str]],
) -> None:
    sessions, _ = demo
    at = signed_in(sessions, "admin").switch_page(str(PAGES / "retrain.py")).run()
    assert at.radio(key="retrain_backend").value == "auto"  # a new project: the worker chooses
    assert at.radio(key="retrain_backend").options[0].startswith("Automatic")
    at.radio(key="retrain_backend").set_value("encoder").run()
    at.button(key="retrain").click().run()
    with sessions() as session:
        assert session.scalars(select(Project)).one().retrain_backend == "encoder"  # kept with the project
        assert session.scalars(select(Job)).one().payload["backend"] == "encoder"
    again = signed_in(sessions, "admin").switch_page(str(PAGES / "retrain.py")).run()
    assert again.radio(key="retrain_backend").value == "encoder"


def test_models_page_shows_versions_and_per_language_quality(
    demo: tuple[sessionmaker[Session], dict[str, str]],
) -> None:
    sessions, _ = demo
    with session_scope(sessions) as session:
        project = session.scalars(select(Project)).one()
        for i, f1 in enumerate((0.4, 0.6)):
            session.add(
                ModelVersion(
                    project_id=project.id,
                    backend="fast",
                    base_model="e5",
                    status=ModelStatus.READY,
                    is_current=i == 0,
                    training_snapshot={
                        "labels": {str(n): "pro" for n in range(20 * (i + 1))},
                        "trained_on": 20,
                    },
                    metrics={
                        "all": {
                            "macro_f1": f1,
                            "macro_f1_ci95": [f1 - 0.1, f1 + 0.1],
                            "topic_f1": 0.8,
                            "stance_f1": 0.5,
                            "confusion": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
                        },
                        "languages": {"en": {"macro_f1": 0.7, "n": 10}, "ar": {"macro_f1": 0.3, "n": 8}},
                        "calibration": {
                            "temperature": 1.8,
                            "fitted_on": 9,
                            "reported_on": 9,
                            "ece_before": 0.31,
                            "ece": 0.12,
                            "languages": {
                                "en": {"n": 5, "ece_before": 0.3, "ece": 0.1},
                                "ar": {"n": 4, "ece_before": 0.33, "ece": 0.15},
                            },
                        },
                    },
                )
            )
    at = signed_in(sessions, "admin").switch_page(str(PAGES / "models.py")).run()
    assert not at.exception
    assert "Bias gap" in at.metric[0].label and at.metric[0].value == "0.400"
    shown = {m.label: m.value for m in at.metric}
    assert shown["Temperature"] == "1.80" and shown["Expected calibration error"] == "0.120"
    assert shown["Eval posts"] == "9 fit / 9 report"
    ece_chart = next(c for c in at.get("vega_lite_chart") if "yOffset" in c.proto.spec)
    bars = pa.ipc.open_stream(ece_chart.proto.datasets[0].data.data).read_all().to_pylist()
    assert {(b["language"], b["probabilities"], b["ECE"]) for b in bars} >= {
        ("English (en) · n=5", "raw", 0.3),
        ("English (en) · n=5", "calibrated", 0.1),
    }
    assert len(at.dataframe) == 1 and list(at.dataframe[0].value["labels"]) == [40, 20]
    picker = at.selectbox(key="models_version")
    assert "current" in picker.value and picker.value.startswith("version 1")  # opens on the current version
    assert (
        "Version 1 is current" in at.info[0].value
    )  # set by hand above; the page says why the rule's pick is
    at.button(key="pin_version").click().run()
    with sessions() as session:
        assert session.scalars(select(ModelVersion.id).where(ModelVersion.pinned)).all() == [1]
    assert "Version 1 is current**: version 1 is pinned by a researcher" in at.info[0].value
    at.button(key="unpin_version").click().run()
    assert (
        "unpin_version" not in [b.key for b in at.button]
        and "the newest evaluated version" in at.info[0].value
    )
    curve = next(c for c in at.get("vega_lite_chart") if "strokeDash" in c.proto.spec)
    assert '"field": "labels"' in curve.proto.spec and '"field": "backend"' in curve.proto.spec
    # An ensemble shows which member counts in which language.
    with session_scope(sessions) as session:
        session.add(
            ModelVersion(
                project_id=project.id,
                backend="ensemble",
                base_model="weighted by language: versions 1 (fast), 2 (fast)",
                status=ModelStatus.READY,
                training_snapshot={
                    "members": [1, 2],
                    "weights": {"by_language": {"en": [0.3, 0.7]}, "unlabelled": [0.5, 0.5]},
                },
                metrics={"all": {"macro_f1": 0.5, "macro_f1_ci95": [0.4, 0.6]}},
            )
        )
    at.run()
    at.selectbox(key="models_version").select(
        next(o for o in at.selectbox(key="models_version").options if "ensemble" in o)
    ).run()
    assert any(h.value == "Members' weights by language" for h in at.subheader)
    weights = next(c for c in at.get("vega_lite_chart") if '"stack": "normalize"' in c.proto.spec)
    rows = pa.ipc.open_stream(weights.proto.datasets[0].data.data).read_all().to_pylist()
    assert {(r["language"], r["member"], r["weight"]) for r in rows} >= {("en", "version 2 (fast)", 0.7)}


def test_sampling_settings_are_saved(demo: tuple[sessionmaker[Session], dict[str, str]]) -> None:
    sessions, _ = demo
    at = signed_in(sessions, "admin").switch_page(str(PAGES / "sampling.py")).run()
    next(n for n in at.number_input if n.label == "Annotations wanted per post").set_value(2)
    at.multiselect[0].select("ar")
    at.button(key="FormSubmitter:sampling-Save").click().run()
    assert not at.exception and at.success
    with sessions() as session:
        project = session.scalars(select(Project)).one()
        assert project.overlap == 2 and project.sampling["favour"] == ["ar"]


def test_export_page_offers_the_file_and_its_datasheet(
    demo: tuple[sessionmaker[Session], dict[str, str]],
) -> None:
    sessions, _ = demo
    at = signed_in(sessions, "admin").switch_page(str(PAGES / "export.py")).run()
    at.button(key="prepare_export").click().run()
    assert not at.exception
    assert "posts ready" in at.success[0].value
    assert len(at.get("download_button")) == 2


def test_export_page_takes_the_probabilities_of_a_chosen_version(
    demo: tuple[sessionmaker[Session], dict[str, str]],
) -> None:
    sessions, _ = demo
    at = signed_in(sessions, "admin").switch_page(str(PAGES / "export.py")).run()
    at.checkbox[0].check().run()
    assert "No model version yet" in at.caption[0].value  # an empty state, not an error
    with session_scope(sessions) as session:
        project = session.scalars(select(Project)).one()
        versions = []
        for current in (False, True):
            version = ModelVersion(
                project_id=project.id,
                backend="fast",
                base_model="test",
                status=ModelStatus.READY,
                is_current=current,
                metrics={},
            )
            session.add(version)
            session.flush()
            versions.append(version.id)
        eval_post = session.scalars(select(Item).where(Item.split == Split.EVAL).limit(1)).one()
        session.add(Prediction(**prediction_row(versions[0], eval_post.id, [0.1, 0.1, 0.7, 0.1])))
        eval_id = eval_post.external_id
    at.run()
    picker = at.selectbox(key="export_version")
    assert picker.value == versions[1] and "current" in picker.format_func(versions[1])
    picker.select(versions[0]).run()
    at.button(key="prepare_export").click().run()
    assert not at.exception
    (_, data), _, _ = at.session_state["export_files"]
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(data.decode("utf-8")))}
    assert rows[eval_id]["model_version"] == str(versions[0]) and rows[eval_id]["predicted"] == "neutral"


def test_admin_creates_an_account_whose_password_works(
    demo: tuple[sessionmaker[Session], dict[str, str]],
) -> None:
    sessions, _ = demo
    at = signed_in(sessions, "admin").switch_page(str(PAGES / "users.py")).run()
    at.text_input[0].input("noor")
    at.button(key="FormSubmitter:add_user-Create").click().run()
    assert not at.exception
    shown = at.success[0].value
    password = shown.split("`")[1]
    from annotator.accounts.users import verify_password

    with sessions() as session:
        noor = session.scalars(select(User).where(User.username == "noor")).one()
        assert verify_password(noor.password_hash, password)


def test_admin_gives_an_account_a_new_password_that_works(
    demo: tuple[sessionmaker[Session], dict[str, str]],
) -> None:
    sessions, _ = demo
    at = signed_in(sessions, "admin").switch_page(str(PAGES / "users.py")).run()
    name = at.selectbox[1].value  # the form's Role, then "Account", then the changed account's Role
    assert at.checkbox[-1].label == "Give a new password"
    at.checkbox[-1].check()
    at.button(key="FormSubmitter:edit_user-Save").click().run()
    assert not at.exception
    shown = at.success[0].value
    assert f"**{name}** has a new password" in shown and "created" not in shown
    password = shown.split("`")[1]
    from annotator.accounts.users import verify_password

    with sessions() as session:
        user = session.scalars(select(User).where(User.username == name)).one()
        assert verify_password(user.password_hash, password)


def test_flagged_posts_page_lists_flags_and_reviews_them(
    demo: tuple[sessionmaker[Session], dict[str, str]],
) -> None:
    sessions, _ = demo
    amira_id = user_id(sessions, "amira")
    with session_scope(sessions) as session:
        project = session.scalars(select(Project)).one()
        amira = session.get(User, amira_id)
        assert amira is not None
        first, second = session.scalars(select(Item).where(Item.split == "pool").limit(2)).all()
        record_answer(session, project, amira, first.id, Answer.flag("spam"))
        record_answer(session, project, amira, second.id, Answer.flag("wrong language"))
        first_id, second_id = first.id, second.id
    at = signed_in(sessions, "admin").switch_page(str(PAGES / "flags.py")).run()
    assert not at.exception, at.exception
    assert "2 flagged post(s) waiting for review" in at.caption[0].value
    reasons = [t.value for t in at.text if t.value.startswith("amira, ")]
    assert len(reasons) == 2 and any(r.endswith(": spam") for r in reasons)
    at.button(key=f"flags_exclude_{first_id}").click().run()
    at.selectbox(key=f"flags_label_{second_id}").select("unrelated").run()
    at.button(key=f"flags_relabel_{second_id}").click().run()
    assert not at.exception, at.exception
    with sessions() as session:
        decisions = dict(session.execute(select(FlagReview.item_id, FlagReview.decision)).all())
        assert decisions == {first_id: FlagDecision.EXCLUDED, second_id: FlagDecision.RELABELLED}
        assert (
            session.scalar(select(Adjudication.label).where(Adjudication.item_id == second_id)) == "unrelated"
        )
    assert "0 flagged post(s) waiting for review, 2 reviewed" in at.caption[0].value


def test_annotators_cannot_open_the_flagged_posts_page(
    demo: tuple[sessionmaker[Session], dict[str, str]],
) -> None:
    sessions, _ = demo
    at = signed_in(sessions, "amira")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(str(PAGES / "flags.py"))


def _scored_version(sessions: sessionmaker[Session]) -> int:
    """A ready version that scored every demo post, pool and eval: right 3 times in 4 (or the next label)."""
    rng = np.random.default_rng(0)
    with session_scope(sessions) as session:
        project = session.scalars(select(Project)).one()
        version = ModelVersion(
            project_id=project.id, backend="fast", base_model="e5", status=ModelStatus.READY, is_current=True
        )
        session.add(version)
        session.flush()
        items = session.scalars(select(Item).where(Item.project_id == project.id)).all()
        eval_labels = {p.item_id: p.label for p in consensus_posts(session, project.id, Split.EVAL)}
        probabilities = []
        for item in items:
            label = LABELS.index(eval_labels.get(item.id, "anti"))
            predicted = label if rng.random() < 0.75 else (label + 1) % 4
            probabilities.append([0.7 if i == predicted else 0.1 for i in range(4)])
        write_predictions(session, version.id, [item.id for item in items], np.array(probabilities))
        return version.id


def test_findings_page_shows_raw_and_corrected_shares(
    demo: tuple[sessionmaker[Session], dict[str, str]],
) -> None:
    sessions, _ = demo
    at = signed_in(sessions, "admin").switch_page(str(PAGES / "findings.py")).run()
    assert not at.exception and "No model version yet" in at.info[0].value
    _scored_version(sessions)
    at = signed_in(sessions, "admin").switch_page(str(PAGES / "findings.py")).run()
    assert not at.exception, at.exception
    assert any("Too few eval posts" in w.value for w in at.warning)  # 5 eval posts per demo language
    table = at.dataframe[0].value
    assert (
        len(table) == 14 and "anti · raw count" in table.columns and "anti · corrected (emq)" in table.columns
    )
    at.radio(key="findings_scope").set_value("related").run()
    assert "unrelated · raw count" not in at.dataframe[0].value.columns
    assert at.multiselect(key="findings_group_by").options == [
        "Language",
        "month",
    ]  # the demo's metadata column
    at.multiselect(key="findings_group_by").set_value(["month"]).run()
    assert not at.exception and list(at.dataframe[0].value["group"]) == [
        "2025-01",
        "2025-02",
        "2025-03",
        "2025-04",
    ]
    at.multiselect(key="findings_group_by").set_value([]).run()
    assert "Choose at least one column" in at.info[0].value


def test_findings_page_says_what_is_missing(demo: tuple[sessionmaker[Session], dict[str, str]]) -> None:
    sessions, _ = demo
    version_id = _scored_version(sessions)
    with session_scope(sessions) as session:
        session.execute(delete(Prediction).where(Prediction.model_version_id == version_id))
    at = signed_in(sessions, "admin").switch_page(str(PAGES / "findings.py")).run()
    assert not at.exception and "has no predictions for the eval posts" in at.error[0].value


def test_annotators_cannot_open_the_findings_page(demo: tuple[sessionmaker[Session], dict[str, str]]) -> None:
    sessions, _ = demo
    at = signed_in(sessions, "amira")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(str(PAGES / "findings.py"))


def test_pages_speak_the_same_language(demo: tuple[sessionmaker[Session], dict[str, str]]) -> None:
    """Post ids as imported, language names with codes, and no import account listed as an annotator."""
    sessions, _ = demo
    with session_scope(sessions) as session:
        project = session.scalars(select(Project)).one()
        amira, ravi = (
            session.scalars(select(User).where(User.username == n)).one() for n in ("amira", "ravi")
        )
        item = session.scalars(select(Item).where(Item.language == "en", Item.split == "pool")).first()
        assert item is not None
        record_answer(session, project, amira, item.id, Answer.of_label("pro"))
        record_answer(session, project, ravi, item.id, Answer.of_label("anti"))
        external_id = item.external_id
    _scored_version(sessions)
    at = signed_in(sessions, "admin").switch_page(str(PAGES / "adjudicate.py")).run()
    assert any(f"post {external_id}" in c.value for c in at.caption)
    assert any("The current model says" in c.value for c in at.caption)
    assert {b.label for b in at.button if b.key and b.key.startswith("adj_")} >= {"Pro", "Anti", "Neutral"}
    at = signed_in(sessions, "admin").switch_page(str(PAGES / "overview.py")).run()
    assert "English (en)" in list(at.dataframe[-1].value["language"])
    at = signed_in(sessions, "admin").switch_page(str(PAGES / "users.py")).run()
    assert "gold" not in list(at.dataframe[0].value["user"])
    assert any("nobody signs in with: gold" in c.value for c in at.caption)


def test_a_finished_or_failed_retrain_is_announced_on_any_page(
    demo: tuple[sessionmaker[Session], dict[str, str]],
) -> None:
    sessions, _ = demo
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.session_state["user_id"] = user_id(sessions, "admin")
    at.run()
    assert not at.toast  # nothing has ended since the session began
    with session_scope(sessions) as session:
        project = session.scalars(select(Project)).one()
        now = datetime.now(UTC)
        session.add_all(
            [
                Job(project_id=project.id, kind=JobKind.FAST_RETRAIN, status=JobStatus.DONE, finished_at=now,
                    progress_message="fast model version 1 ready (current)"),
                Job(project_id=project.id, kind=JobKind.RETRAIN, status=JobStatus.FAILED, finished_at=now,
                    error="Traceback ...\nRuntimeError: out of memory"),
            ]
        )  # fmt: skip
    at.switch_page(str(PAGES / "sampling.py")).run()
    toasts = [t.value for t in at.toast]
    assert "Quick model (job 1) finished: fast model version 1 ready (current)" in toasts, toasts
    assert "Retrain (job 2) failed: RuntimeError: out of memory" in toasts
    at.run()
    assert not at.toast  # each once


def test_annotators_see_where_their_labels_help_and_their_own_agreement(
    demo: tuple[sessionmaker[Session], dict[str, str]],
) -> None:
    sessions, _ = demo
    with session_scope(sessions) as session:
        amira = session.scalars(select(User).where(User.username == "amira")).one()
        amira.languages = ["tr", "en"]
    at = signed_in(sessions, "amira")
    assert not at.exception
    texts = "\n".join(m.value for m in at.sidebar.markdown)
    assert "- Turkish ▰▱▱▱▱▱▱▱▱▱ 3 of 30 labels · not evaluated yet" in texts and "- English " in texts, texts
    assert "Shown once you share 10 posts with other annotators (now 0)" in texts


def test_researchers_edit_the_guideline_and_its_translations_in_versions(
    demo: tuple[sessionmaker[Session], dict[str, str]],
) -> None:
    sessions, _ = demo
    at = signed_in(sessions, "admin").switch_page(str(PAGES / "sampling.py")).run()
    shown = at.text_area(key="guidelines-text-project").value
    assert shown is not None and shown.startswith("Label each post by what it says")  # the demo's, version 1
    at.selectbox(key="guidelines-language").set_value("ar").run()
    at.text_area(key="guidelines-text-ar").input("صنف موقف المنشور من الهجرة")
    at.button(key="FormSubmitter:guidelines-Save as a new version").click().run()
    assert not at.exception and "version 1 of the Arabic (ar) translation" in at.success[0].value
    assert at.expander[0].label == "Versions (1)"
    with sessions() as session:
        project = session.scalars(select(Project)).one()
        assert guideline_for(session, project, "ar").text == "صنف موقف المنشور من الهجرة"
        english = guideline_for(session, project, "en")  # no translation: the project's own, version 1
        assert (english.language, english.version) == ("", 1)
