"""The consensus a researcher can trust (db/consensus.py): adjudication wins, then a control's gold label, then
the reliability model's posterior (or the majority vote); answers on controls and excluded annotators' labels
never count; and what db.versions.consensus_posts trains on."""

import random
from collections import defaultdict

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user
from annotator.quality.exclusions import exclude_annotator, include_annotator
from annotator.quality.settings import update_quality
from core.labels import LABELS, consensus
from core.quality import QualitySettings
from core.reliability import MODEL_VOTER
from db.consensus import (
    AnnotatorTally,
    PostConsensus,
    fit_languages,
    project_consensus,
    voting_version,
    write_model_votes,
)
from db.models import (
    Adjudication,
    Backend,
    ControlPost,
    ControlSource,
    FlagDecision,
    FlagReview,
    Item,
    LanguageSource,
    ModelStatus,
    ModelVersion,
    Project,
    Role,
    Split,
    User,
)
from db.quality import active_controls
from db.snapshots import TrainingSnapshot, snapshot_json
from db.versions import LabelledPost, consensus_posts
from testing.factories import add_label, make_project


def _project(session: Session, aggregation: str) -> Project:
    project = make_project(session, languages=("en", "tr"))
    update_quality(session, project, OPERATOR, QualitySettings(aggregation=aggregation))
    return project


def _items(
    session: Session, project: Project, n: int, language: str = "en", split: Split = Split.POOL
) -> list[int]:
    start = session.scalar(select(func.count()).select_from(Item)) or 0
    items = [
        Item(
            project_id=project.id,
            external_id=f"{language}-{split}-{start + i}",
            text=f"post {language} {split} {start + i}",
            language=language,
            language_source=LanguageSource.GIVEN,
            text_hash=f"{language}{split}{start + i}",
            split=split,
        )
        for i in range(n)
    ]
    session.add_all(items)
    session.flush()
    return [item.id for item in items]


def _control(session: Session, item_id: int, label: str, *, active: bool = True) -> None:
    session.add(ControlPost(item_id=item_id, label=label, source=ControlSource.MANUAL, active=active))
    session.flush()


def _users(session: Session, *names: str) -> list[User]:
    return [add_user(session, name, by=OPERATOR) for name in names]


def _adjudicate(session: Session, item_id: int, label: str) -> None:
    rita = add_user(session, "rita", role=Role.RESEARCHER, by=OPERATOR)
    session.add(Adjudication(item_id=item_id, label=label, user_id=rita.id))
    session.flush()


@pytest.mark.parametrize("aggregation", ["reliability", "majority"])
def test_adjudication_wins_then_the_controls_gold_label(session: Session, aggregation: str) -> None:
    project = _project(session, aggregation)
    adjudicated, control, both, unlabelled = _items(session, project, 4)
    amira, ravi = _users(session, "amira", "ravi")
    for user in (amira, ravi):
        add_label(session, adjudicated, user.id, "pro")
        add_label(session, control, user.id, "pro")  # answers on a control: never labels of the corpus
    _adjudicate(session, adjudicated, "anti")
    _control(session, control, "neutral")
    _control(session, both, "unrelated")
    session.add(Adjudication(item_id=both, label="anti", user_id=amira.id))
    _control(session, unlabelled, "pro", active=False)  # unmarked: no gold label any more

    found = project_consensus(session, project.id)
    assert found == {
        adjudicated: PostConsensus(adjudicated, "anti", 1.0, "adjudicated"),
        control: PostConsensus(control, "neutral", 1.0, "control"),
        both: PostConsensus(both, "anti", 1.0, "adjudicated"),
    }
    trained = consensus_posts(session, project.id, Split.POOL)
    assert [(p.item_id, p.label, p.weight) for p in trained] == [
        (adjudicated, "anti", 1.0),
        (control, "neutral", 1.0),  # a control with no corpus label still trains, on its gold label
        (both, "anti", 1.0),
    ]


def test_a_split_gets_only_its_posts_and_an_eval_control_is_gold(session: Session) -> None:
    project = _project(session, "reliability")
    (pool,) = _items(session, project, 1)
    (evaluated,) = _items(session, project, 1, split=Split.EVAL)
    (amira,) = _users(session, "amira")
    add_label(session, pool, amira.id, "pro")
    add_label(session, evaluated, amira.id, "pro")
    _control(session, evaluated, "anti")
    assert set(project_consensus(session, project.id, Split.POOL)) == {pool}
    assert project_consensus(session, project.id, Split.EVAL) == {
        evaluated: PostConsensus(evaluated, "anti", 1.0, "control")
    }
    assert [p.label for p in consensus_posts(session, project.id, Split.EVAL)] == ["anti"]


def test_active_controls_reads_the_gold_labels(session: Session) -> None:
    project = _project(session, "majority")
    first, second = _items(session, project, 2)
    _control(session, first, "pro")
    _control(session, second, "anti", active=False)
    assert active_controls(session, project.id) == {first: "pro"}


@pytest.mark.parametrize("aggregation", ["reliability", "majority"])
def test_excluding_an_annotator_changes_the_consensus_and_including_them_restores_it(
    session: Session, aggregation: str
) -> None:
    project = _project(session, aggregation)
    shared, alone = _items(session, project, 2)
    amira, ravi, sami = _users(session, "amira", "ravi", "sami")
    add_label(session, shared, amira.id, "pro")
    add_label(session, shared, ravi.id, "anti")
    add_label(session, shared, sami.id, "anti")
    add_label(session, alone, ravi.id, "neutral")
    before = project_consensus(session, project.id)
    assert before[shared].label == "anti" and before[alone].label == "neutral"

    exclude_annotator(session, project, OPERATOR, "ravi", "random labels on the controls")
    exclude_annotator(session, project, OPERATOR, "sami", "")
    found = project_consensus(session, project.id)
    assert set(found) == {shared}  # ravi's only post has no counted label left
    assert found[shared].label == "pro"
    assert found[shared].source == ("reliability" if aggregation == "reliability" else "single")
    assert [p.item_id for p in consensus_posts(session, project.id, Split.POOL)] == [shared]
    assert {language for language, fit in fit_languages(session, project.id).items() if fit.fit} == {"en"}

    include_annotator(session, project, OPERATOR, "ravi")
    include_annotator(session, project, OPERATOR, "sami")
    assert project_consensus(session, project.id) == before


def test_majority_setting_is_the_old_consensus(session: Session) -> None:
    """consensus_posts under majority vote: core.labels.consensus of every post's labels, adjudication first,
    ties and posts excluded after a flag left out, every weight 1 (as before controls and exclusions)."""
    project = _project(session, "majority")
    items = _items(session, project, 60)
    users = _users(session, "a", "b", "c", "d")
    rng = random.Random(7)
    labels: dict[int, list[str]] = defaultdict(list)
    for item_id in items:
        for user in rng.sample(users, rng.randint(0, 4)):
            label = rng.choice(LABELS[:2])
            add_label(session, item_id, user.id, label)
            labels[item_id].append(label)
    adjudicated = {item_id: rng.choice(LABELS) for item_id in rng.sample(items, 8)}
    rita = add_user(session, "rita", role=Role.RESEARCHER, by=OPERATOR)
    for item_id, label in adjudicated.items():
        session.add(Adjudication(item_id=item_id, label=label, user_id=rita.id))
    flagged = rng.sample(items, 5)
    for item_id in flagged:
        session.add(FlagReview(item_id=item_id, decision=FlagDecision.EXCLUDED, user_id=rita.id))
    session.flush()

    expected = []
    for item_id in items:
        old = consensus(labels[item_id], adjudicated.get(item_id))
        if old.label is not None and item_id not in flagged:
            expected.append((item_id, old.label, 1.0))
    found = consensus_posts(session, project.id, Split.POOL)
    assert [(p.item_id, p.label, p.weight) for p in found] == expected
    assert len(expected) > 20  # the draw gave a real mix to compare
    ties = [i for i in items if i not in adjudicated and consensus(labels[i]).source == "tie"]
    assert ties and all(project_consensus(session, project.id)[i].label is None for i in ties)


def test_reliability_outvotes_a_spammer_once_the_controls_show_who_is_careful(session: Session) -> None:
    project = _project(session, "reliability")
    controls = _items(session, project, 12)
    disputed, agreed = _items(session, project, 2)
    careful, spammer = _users(session, "careful", "spammer")
    for index, item_id in enumerate(controls):
        gold = LABELS[index % 4]
        _control(session, item_id, gold)
        add_label(session, item_id, careful.id, gold)
        add_label(session, item_id, spammer.id, LABELS[(index + 1 + index // 4) % 4])  # never right
    add_label(session, disputed, careful.id, "anti")
    add_label(session, disputed, spammer.id, "pro")
    add_label(session, agreed, careful.id, "neutral")
    add_label(session, agreed, spammer.id, "neutral")

    found = project_consensus(session, project.id)
    assert found[disputed].label == "anti" and found[disputed].source == "reliability"
    assert found[disputed].probability is not None and found[disputed].probability > 0.8
    assert found[agreed].label == "neutral"
    weights = {p.item_id: p.weight for p in consensus_posts(session, project.id, Split.POOL)}
    assert weights[disputed] == pytest.approx(found[disputed].probability)
    assert all(weights[item_id] == 1.0 for item_id in controls)

    update_quality(session, project, OPERATOR, QualitySettings(aggregation="majority"))
    assert project_consensus(session, project.id)[disputed] == PostConsensus(disputed, None, None, "tie")


def test_each_language_has_its_own_fit_and_the_report_reads_it_whole(session: Session) -> None:
    project = _project(session, "reliability")
    en_controls = _items(session, project, 6)
    (tr_post,) = _items(session, project, 1, language="tr")
    amira, ravi, sami = _users(session, "amira", "ravi", "sami")
    for index, item_id in enumerate(en_controls):
        _control(session, item_id, "pro")
        add_label(session, item_id, amira.id, "pro")
        add_label(session, item_id, ravi.id, "pro" if index < 2 else "anti")
    add_label(session, tr_post, sami.id, "unrelated")
    add_label(session, tr_post, ravi.id, "unrelated")
    exclude_annotator(session, project, OPERATOR, "ravi", "")

    fits = fit_languages(session, project.id)
    assert set(fits) == {"en", "tr"}
    english = fits["en"]
    assert english.users == (amira.id, ravi.id) and english.excluded == frozenset({ravi.id})
    assert english.tallies == {amira.id: AnnotatorTally(6, 6, 6), ravi.id: AnnotatorTally(6, 6, 2)}
    assert english.fit is not None and set(english.fit.confusion) == {amira.id}  # excluded: no confusion
    assert len(english.answers) == 12 and all(a.control for a in english.answers)
    turkish = fits["tr"]
    assert turkish.fit is not None and set(turkish.fit.confusion) == {sami.id}
    assert turkish.tallies[ravi.id] == AnnotatorTally(1, 0, 0)
    assert not any(a.control for a in turkish.answers)


def test_the_snapshot_records_the_aggregation() -> None:
    snapshot = snapshot_json(labels={"1": "pro"}, trained_on=1, job_id=None, aggregation="reliability")
    assert TrainingSnapshot.of(snapshot).aggregation == "reliability"
    assert TrainingSnapshot.of({"labels": {}}).aggregation is None
    assert LabelledPost(1, "t", "en", "pro").weight == 1.0


def _fast_version(session: Session, project: Project, status: ModelStatus = ModelStatus.READY) -> int:
    version = ModelVersion(project_id=project.id, backend=Backend.FAST, base_model="e5", status=status)
    session.add(version)
    session.flush()
    return version.id


def test_the_models_votes_break_a_tie_between_two_annotators_and_never_label_a_post_alone(
    session: Session,
) -> None:
    project = _project(session, "reliability")
    ana, ben = _users(session, "ana", "ben")
    *agreed, disputed, lone, unlabelled = _items(session, project, 15)
    agreed_labels = {item_id: LABELS[n % len(LABELS)] for n, item_id in enumerate(agreed)}
    for item_id, label in agreed_labels.items():
        add_label(session, item_id, ana.id, label)
        add_label(session, item_id, ben.id, label)
    add_label(session, disputed, ana.id, "pro")
    add_label(session, disputed, ben.id, "neutral")
    add_label(session, lone, ana.id, "anti")  # one annotator alone: the model may not overturn them
    assert voting_version(session, project.id) is None
    before = project_consensus(session, project.id)

    # the model agrees with both annotators wherever they agree, so its vote tips the post they dispute
    first = _fast_version(session, project)
    write_model_votes(session, first, agreed_labels | {disputed: "neutral", lone: "pro", unlabelled: "anti"})
    assert voting_version(session, project.id) == first
    found = project_consensus(session, project.id)
    assert found[disputed].label == "neutral" and found[disputed].source == "reliability"
    assert found[disputed].probability is not None and found[disputed].probability > 0.6
    assert unlabelled not in found  # a vote alone labels nothing
    assert found[lone].label == "anti"
    assert all(found[item_id].label == label for item_id, label in agreed_labels.items())

    newer = _fast_version(session, project)  # the newest ready version's votes count
    write_model_votes(session, newer, agreed_labels | {disputed: "pro"})
    assert project_consensus(session, project.id)[disputed].label == "pro"
    failed = _fast_version(session, project, ModelStatus.FAILED)  # a failed version's do not
    write_model_votes(session, failed, agreed_labels | {disputed: "neutral"})
    assert voting_version(session, project.id) == newer
    assert project_consensus(session, project.id)[disputed].label == "pro"
    fit = fit_languages(session, project.id)["en"].fit
    assert fit is not None and MODEL_VOTER in fit.confusion  # the report reads the same fit

    update_quality(session, project, OPERATOR, QualitySettings(model_votes=False))
    assert voting_version(session, project.id) is None
    assert project_consensus(session, project.id) == before
