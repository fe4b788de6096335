"""What a model version learns from (consensus labels, adjudications, posts excluded after a flag), and which
version is current."""

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user
from annotator.annotation.adjudication import adjudicate
from annotator.annotation.annotate import Answer, record_answer
from annotator.annotation.flags import review_flag
from annotator.corpus.ingest import import_file
from annotator.demo import create_demo_project
from annotator.quality.settings import update_quality
from core.labels import LABELS
from core.quality import QualitySettings
from db.models import FlagDecision, Item, ModelStatus, ModelVersion, Role, Split
from db.versions import (
    VersionNotReady,
    adapter_folder,
    choose_current,
    consensus_posts,
    pool_posts,
    ready_version,
    ready_versions,
    require_ready,
    resolve_folder,
    select_current,
    standing,
    stored_folder,
    version_folder,
    write_predictions,
)
from testing.factories import make_project, posts, write_csv


def test_consensus_posts_follow_labels_adjudications_and_flag_reviews(
    session: Session, tmp_path: Path
) -> None:
    project = make_project(session)
    update_quality(session, project, OPERATOR, QualitySettings(aggregation="majority"))  # ties stay ties
    import_file(session, project, write_csv(tmp_path / "p.csv", posts(5)), by=OPERATOR)
    items = list(session.scalars(select(Item).order_by(Item.id)))
    amira, ravi = add_user(session, "amira", by=OPERATOR), add_user(session, "ravi", by=OPERATOR)
    rita = add_user(session, "rita", role=Role.RESEARCHER, by=OPERATOR)
    record_answer(session, project, amira, items[0].id, Answer.of_label("pro"))  # single label
    record_answer(session, project, amira, items[1].id, Answer.of_label("pro"))  # a tie: left out
    record_answer(session, project, ravi, items[1].id, Answer.of_label("anti"))
    record_answer(
        session, project, amira, items[2].id, Answer.of_label("anti")
    )  # tie settled by adjudication
    record_answer(session, project, ravi, items[2].id, Answer.of_label("neutral"))
    adjudicate(session, project, rita, items[2].id, "neutral")
    record_answer(session, project, amira, items[3].id, Answer.of_label("pro"))  # labelled, then excluded
    record_answer(session, project, ravi, items[3].id, Answer.flag("offensive"))
    review_flag(session, project, rita, items[3].id, FlagDecision.EXCLUDED)
    record_answer(session, project, amira, items[4].id, Answer.flag("which stance?"))  # relabelled, no labels
    review_flag(session, project, rita, items[4].id, FlagDecision.RELABELLED, label="unrelated")
    found = [(post.item_id, post.label) for post in consensus_posts(session, project.id, Split.POOL)]
    assert found == [(items[0].id, "pro"), (items[2].id, "neutral"), (items[4].id, "unrelated")]
    assert consensus_posts(session, project.id, Split.EVAL) == []
    assert pool_posts(session, project.id) == [(item.id, item.text) for item in items]


# --- Which version is current: the noise of small eval splits in mind --------------------------------------


def _version(
    session: Session, project_id: int, f1: float | None, interval: tuple[float, float] | None
) -> int:
    metrics = {} if f1 is None else {"all": {"macro_f1": f1, "macro_f1_ci95": list(interval or (f1, f1))}}
    version = ModelVersion(
        project_id=project_id, backend="fast", base_model="e5", status=ModelStatus.READY, metrics=metrics
    )
    session.add(version)
    session.flush()
    select_current(session, project_id)
    return version.id


def _current(session: Session) -> int:
    return session.scalars(select(ModelVersion.id).where(ModelVersion.is_current)).one()


def test_the_newest_version_is_current_unless_an_older_one_is_better_beyond_its_interval(
    session: Session,
) -> None:
    project = make_project(session)
    first = _version(session, project.id, 0.60, (0.48, 0.71))
    second = _version(session, project.id, 0.55, (0.44, 0.66))  # lower, but within the noise
    assert _current(session) == second
    choice = choose_current(ready_versions(session, project.id))
    assert (
        choice is not None and "version(s) 1 score higher" in choice.reason and "not beyond" in choice.reason
    )
    third = _version(session, project.id, 0.26, (0.18, 0.33))  # collapsed: versions 1 and 2 beat it clearly
    assert _current(session) == first
    assert "beats the newest evaluated version 3 (0.260) beyond its interval" in standing(session, third)
    assert standing(session, first) == " (current)" and second


def test_a_paired_comparison_on_the_same_eval_posts_decides_where_intervals_overlap(session: Session) -> None:
    """Two versions with the same stored scores and intervals (which overlap): the older is right on every eval post
    where the newer is wrong on a fifth, which a paired bootstrap over the eval posts sees and separate intervals
    cannot. A later version that is as good as the older one is preferred again (not better beyond the noise)."""
    project_id = create_demo_project(session, by=OPERATOR).project.id
    gold = {p.item_id: LABELS.index(p.label) for p in consensus_posts(session, project_id, Split.EVAL)}
    ids = sorted(gold)
    right = np.eye(4)[[gold[i] for i in ids]] * 0.9 + 0.025
    sloppy = right.copy()
    sloppy[::5] = np.roll(sloppy[::5], 1, axis=1)  # every fifth post wrong

    def version(rows: np.ndarray, f1: float) -> int:
        made = ModelVersion(
            project_id=project_id,
            backend="fast",
            base_model="e5",
            status=ModelStatus.READY,
            metrics={"all": {"macro_f1": f1, "macro_f1_ci95": [f1 - 0.1, f1 + 0.1]}},
        )
        session.add(made)
        session.flush()
        write_predictions(session, made.id, ids, rows)
        select_current(session, project_id)
        return made.id

    first = version(right, 0.80)
    second = version(sloppy, 0.75)
    assert _current(session) == first  # without the pairing, 0.80's interval (0.70-0.90) held 0.75
    reason = standing(session, second)
    assert f"on the {len(ids)} eval posts both scored" in reason and "beyond the noise" in reason
    third = version(right, 0.80)  # the same predictions as the first: no difference at all
    assert _current(session) == third
    assert choose_current(ready_versions(session, project_id)) is not None


def test_a_pinned_version_stays_current_and_unevaluated_projects_take_the_newest(session: Session) -> None:
    project = make_project(session)
    first = _version(session, project.id, None, None)
    second = _version(session, project.id, None, None)
    assert _current(session) == second
    choice = choose_current(ready_versions(session, project.id))
    assert choice is not None and "no version has been evaluated" in choice.reason
    session.get(ModelVersion, first).pinned = True  # type: ignore[union-attr]
    select_current(session, project.id)
    _version(session, project.id, 0.9, (0.85, 0.95))
    assert _current(session) == first
    assert "pinned" in (choose_current(ready_versions(session, project.id)) or choice).reason


def test_the_pool_is_read_in_keyset_pages_and_ranges_that_cover_it_once(
    session: Session, tmp_path: Path
) -> None:
    import numpy as np
    from sqlalchemy import func

    from db.models import Backend, Prediction
    from db.versions import pool_page, pool_range, pool_ranges, pool_size, replace_predictions

    project = make_project(session)
    rows = [*posts(23), {"id": "e1", "text": "held out", "lang": "en", "label": ""}]
    import_file(session, project, write_csv(tmp_path / "p.csv", rows), by=OPERATOR)
    session.execute(Item.__table__.update().where(Item.external_id == "e1").values(split=Split.EVAL))
    everything = pool_posts(session, project.id)
    assert pool_size(session, project.id) == len(everything) == 23
    paged, after = [], 0
    while page := pool_page(session, project.id, after, 5):
        paged += page
        after = page[-1][0]
    assert paged == everything
    ranges = list(pool_ranges(session, project.id, 7))
    assert len(ranges) == 4 and ranges[0][0] == 0
    assert [post for a, b in ranges for post in pool_range(session, project.id, a, b)] == everything
    version = ModelVersion(
        project_id=project.id, backend=Backend.LORA, base_model="m", status=ModelStatus.SCORING
    )
    session.add(version)
    session.flush()
    ids = [item_id for item_id, _ in everything[:7]]
    for _ in range(2):  # a retried page replaces its rows
        replace_predictions(session, version.id, ids, np.full((7, 4), 0.25))
    count = session.scalar(select(func.count()).where(Prediction.model_version_id == version.id))
    assert count == 7


# --- Where a version's files are: relative to the data folder, and old absolute rows ---------------------------


def _version_with(adapter_path: str | None) -> ModelVersion:
    return ModelVersion(id=7, project_id=3, backend="fast", base_model="m", adapter_path=adapter_path)


def test_a_version_s_files_follow_a_moved_data_folder(tmp_path: Path) -> None:
    version = _version_with(stored_folder(3, 7))
    assert version.adapter_path == "adapters/project-3/version-7"  # nothing of this machine is stored
    moved = tmp_path / "moved-data"
    assert version_folder(moved, version) == moved / "adapters" / "project-3" / "version-7"
    assert version_folder(moved, version) == adapter_folder(moved, 3, 7)
    assert version_folder(moved, _version_with(None)) is None  # an ensemble, or a version still training


def test_old_absolute_rows_are_used_where_they_exist_else_found_under_the_current_data_folder(
    tmp_path: Path,
) -> None:
    old_data, new_data = tmp_path / "old", tmp_path / "new"
    written = adapter_folder(old_data, 3, 7)
    written.mkdir(parents=True)
    version = _version_with(str(written))  # as versions were written before paths were relative
    assert version_folder(new_data, version) == written  # still there: the same machine, nothing moved
    written.rename(
        tmp_path / "elsewhere"
    )  # the data folder moved, or the project was restored on another machine
    assert version_folder(new_data, version) == new_data / "adapters" / "project-3" / "version-7"
    assert resolve_folder(new_data, 3, 7, str(written)) == adapter_folder(new_data, 3, 7)


def test_ready_version_is_a_ready_version_of_the_project_or_the_current_one(session: Session) -> None:
    project, other = make_project(session), make_project(session, "other")
    assert ready_version(session, project.id, None) is None  # no current version yet: the caller decides
    ready = _version(session, project.id, None, None)
    assert ready_version(session, project.id, None) == session.get(ModelVersion, ready)
    assert ready_version(session, project.id, ready) == session.get(ModelVersion, ready)
    training = ModelVersion(
        project_id=project.id, backend="fast", base_model="e5", status=ModelStatus.TRAINING
    )
    session.add(training)
    session.flush()
    with pytest.raises(VersionNotReady, match=f"^Model version {training.id} is training, not ready$") as got:
        ready_version(session, project.id, training.id)
    assert got.value.version is training
    with pytest.raises(VersionNotReady, match=f"^Model version {ready} is not a version of this project$"):
        ready_version(session, other.id, ready)
    with pytest.raises(VersionNotReady, match=r"^Model version 999 is not a version") as got:
        ready_version(session, project.id, 999)
    assert got.value.version is None
    with pytest.raises(VersionNotReady, match="is training, not ready"):
        require_ready(training)
