"""The researcher pages' numbers: label counts, kappa and alpha, disagreements and adjudication, bias gap."""

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user
from annotator.annotation.adjudication import adjudicate
from annotator.annotation.agreement import cohen_kappa
from annotator.annotation.annotate import Answer, record_answer
from annotator.corpus.ingest import import_file
from annotator.errors import LingualoopError
from annotator.reports.dashboard import (
    agreement,
    answers_per_day,
    disagreements,
    label_counts,
    own_agreement,
    version_summaries,
)
from annotator.sampling.settings import SamplingSettings, update_sampling
from db.models import Item, ModelStatus, ModelVersion, Role
from testing.factories import add_label, make_project, posts, write_csv


def test_cohen_kappa_matches_the_textbook() -> None:
    # 2x2 example: agreement 0.7, chance 0.5 -> kappa 0.4
    a = ["y"] * 35 + ["n"] * 15 + ["y"] * 15 + ["n"] * 35
    b = ["y"] * 35 + ["y"] * 15 + ["n"] * 15 + ["n"] * 35
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(["x", "x"], ["x", "x"]) == 1.0 and cohen_kappa([], []) is None


def test_agreement_disagreements_and_adjudication(session: Session, tmp_path: Path) -> None:
    project = make_project(session)
    import_file(session, project, write_csv(tmp_path / "p.csv", posts(4) + posts(2, "es", "s")), by=OPERATOR)
    rosa = add_user(session, "rosa", role=Role.RESEARCHER, by=OPERATOR)
    a, b = add_user(session, "a", by=OPERATOR), add_user(session, "b", by=OPERATOR)
    from sqlalchemy import select

    from db.models import Item

    ids = list(session.scalars(select(Item.id).order_by(Item.id)))
    for item_id, (x, y) in zip(
        ids,
        [
            ("pro", "pro"),
            ("anti", "anti"),
            ("pro", "neutral"),
            ("unrelated", "unrelated"),
            ("pro", "pro"),
            ("anti", "pro"),
        ],
        strict=True,
    ):
        record_answer(session, project, a, item_id, Answer.of_label(x))
        record_answer(session, project, b, item_id, Answer.of_label(y))
    pairs, per_language = agreement(session, project, rosa)
    assert [(p.first, p.second, p.posts) for p in pairs] == [("a", "b", 6)]
    assert pairs[0].kappa is not None and 0 < pairs[0].kappa < 1
    assert {x.language: x.posts for x in per_language} == {"en": 4, "es": 2}
    assert label_counts(session, project, rosa)["en"] == {"pro": 3, "anti": 2, "neutral": 1, "unrelated": 2}
    assert sum(n for _, _, n in answers_per_day(session, project, rosa)) == 12
    found = disagreements(session, project, rosa)
    assert [d.item_id for d in found] == [ids[2], ids[5]]
    adjudicate(session, project, rosa, ids[2], "neutral")
    found = disagreements(session, project, rosa)
    assert [(d.item_id, d.adjudicated) for d in found] == [(ids[5], None), (ids[2], "neutral")]
    with pytest.raises(LingualoopError, match="Unknown label"):
        adjudicate(session, project, rosa, ids[5], "maybe")


def test_bias_gap_and_sampling_settings(session: Session) -> None:
    project = make_project(session, languages=["en", "ar"])
    rosa = add_user(session, "rosa", role=Role.RESEARCHER, by=OPERATOR)
    session.add(
        ModelVersion(
            project_id=project.id,
            backend="fast",
            base_model="e5",
            status=ModelStatus.READY,
            metrics={
                "all": {"macro_f1": 0.5},
                "languages": {
                    "en": {"macro_f1": 0.8, "n": 9},
                    "ar": {"macro_f1": 0.35, "n": 7},
                    "hu": {"macro_f1": 0.0, "n": 2},
                },
            },
        )
    )
    session.flush()
    assert version_summaries(session, project, rosa)[0].bias_gap == pytest.approx(0.45)  # hu: too few posts
    assert version_summaries(session, project, rosa)[0].member_weights == []  # not an ensemble
    session.add(
        ModelVersion(
            project_id=project.id,
            backend="ensemble",
            base_model="weighted by language",
            status=ModelStatus.READY,
            training_snapshot={
                "members": [1, 7],
                "weights": {"by_language": {"en": [0.4, 0.6]}, "unlabelled": [0.0, 1.0]},
            },
        )
    )
    session.flush()
    weights = version_summaries(session, project, rosa)[1].member_weights
    assert weights == [
        {"language": "en", "member": "version 1 (fast)", "weight": 0.4},
        {"language": "en", "member": "version 7 (?)", "weight": 0.6},  # a member no longer there
        {"language": "other languages", "member": "version 1 (fast)", "weight": 0.0},
        {"language": "other languages", "member": "version 7 (?)", "weight": 1.0},
    ]
    update_sampling(
        session,
        project,
        rosa,
        SamplingSettings(strategy="entropy.v1", favour=("ar",), random_share=0.1, fast_every=10),
        overlap=2,
    )
    assert project.overlap == 2 and project.sampling["favour"] == ["ar"]
    with pytest.raises(LingualoopError, match="Not languages of this project: de"):
        update_sampling(session, project, rosa, SamplingSettings(favour=("de",)), overlap=1)
    with pytest.raises(LingualoopError, match="Unknown sampling strategy"):
        update_sampling(session, project, rosa, SamplingSettings(strategy="smartest.v9"), overlap=1)
    assert SamplingSettings.of(project) == SamplingSettings(
        strategy="entropy.v1", favour=("ar",), random_share=0.1, fast_every=10
    )


def test_an_annotator_sees_their_own_agreement_once_they_share_enough_posts(
    session: Session, tmp_path: Path
) -> None:
    project = make_project(session)
    import_file(session, project, write_csv(tmp_path / "p.csv", posts(12)), by=OPERATOR)
    items = list(session.scalars(select(Item).order_by(Item.id)))
    amira, ravi = add_user(session, "amira", by=OPERATOR), add_user(session, "ravi", by=OPERATOR)
    rita = add_user(session, "rita", role=Role.RESEARCHER, by=OPERATOR)
    for n, item in enumerate(items[:9]):
        add_label(session, item.id, amira.id, "pro" if n % 2 else "anti")
        add_label(session, item.id, ravi.id, "pro" if n % 2 else "anti")
    assert own_agreement(session, project, amira).kappa is None  # 9 shared posts: too few to say
    add_label(session, items[9].id, amira.id, "pro")
    add_label(session, items[9].id, ravi.id, "anti")
    add_label(session, items[10].id, amira.id, "neutral")  # nobody else labelled it
    adjudicate(session, project, rita, items[9].id, "anti")
    mine = own_agreement(session, project, amira)
    assert mine.shared_posts == 10 and mine.kappa is not None and 0.6 < mine.kappa < 0.9
    assert (mine.adjudicated_posts, mine.matched_adjudications) == (1, 0)
    assert own_agreement(session, project, ravi).matched_adjudications == 1
