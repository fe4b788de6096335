"""Each labelled post's consensus label, its probability and how it was reached, by the project's aggregation
setting: adjudication wins, then a control's gold label, then the reliability model's posterior (Dawid-Skene per
language, core.reliability, anchored on the controls) or the majority vote. Excluded annotators' labels count
nowhere. Both the web side (export, reports, the fast model) and the worker (training) read it here."""

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.labels import LABELS, consensus
from core.quality import QualitySettings
from core.reliability import ReliabilityFit, dawid_skene, with_model_votes
from db.models import (
    Adjudication,
    Annotation,
    AnnotationKind,
    Backend,
    Item,
    ModelStatus,
    ModelVersion,
    ModelVote,
    Project,
    Split,
)
from db.quality import active_controls, active_controls_query, excluded_users

ADJUDICATED = "adjudicated"
CONTROL = "control"
RELIABILITY = "reliability"
TIE = "tie"
SOURCES = (ADJUDICATED, CONTROL, RELIABILITY, "unanimous", "majority", "single", TIE)
"""What PostConsensus.source may say: the first three, or core.labels.consensus's vote sources."""


@dataclass(frozen=True)
class PostConsensus:
    item_id: int
    label: str | None
    """None where a majority vote is tied (the post has no label yet)."""
    probability: float | None
    """The reliability model's posterior probability of the label; under majority vote the share of annotators
    who gave it; 1.0 for an adjudication or a control; None without a label."""
    source: str
    """One of SOURCES."""


@dataclass(frozen=True)
class LabelAnswer:
    """One annotator's label on one post, as the reliability model and the Annotators report read it."""

    item_id: int
    user_id: int
    label: str
    seconds: float | None
    control: bool
    """The post is an active control: the answer scores the annotator and is never a label of the corpus."""


@dataclass(frozen=True)
class AnnotatorTally:
    """One annotator's answers in one language."""

    answers: int
    """Labels given, controls included."""
    control_answers: int
    control_right: int
    """Control answers that match the control's gold label."""


@dataclass(frozen=True)
class LanguageFit:
    """The reliability model of one language and everything the Annotators report needs about its answers."""

    language: str
    fit: ReliabilityFit[int, int] | None
    """Fitted on the answers of the annotators who are not excluded (confusion keyed by user id); None when every
    answer of the language is an excluded annotator's."""
    users: tuple[int, ...]
    """Every annotator who labelled a post of the language, excluded ones too, in id order."""
    excluded: frozenset[int]
    """Those of `users` whose labels are excluded (they have tallies and answers, but no confusion in `fit`)."""
    tallies: dict[int, AnnotatorTally]
    """Per user id in `users`."""
    answers: tuple[LabelAnswer, ...]
    """Every label answer of the language (excluded annotators' too), in (post, user) order: for seconds per
    label and agreement with the others."""


@dataclass(frozen=True)
class _Answer:
    item_id: int
    user_id: int
    label: str
    language: str
    split: Split
    seconds: float | None


def aggregation_of(session: Session, project_id: int) -> str:
    """The project's aggregation setting (core.quality.AGGREGATIONS): what a training snapshot records."""
    return _quality(session, project_id).aggregation


def _quality(session: Session, project_id: int) -> QualitySettings:
    project = session.get(Project, project_id)
    return QualitySettings.of(project.quality if project is not None else None)


def voting_version(session: Session, project_id: int) -> int | None:
    """The newest ready fast version that left cross-fitted votes (ModelVote), whose votes the reliability model
    counts when the project's `model_votes` setting is on; None when there is none or the setting is off."""
    if not _quality(session, project_id).model_votes:
        return None
    return session.scalar(
        select(ModelVersion.id)
        .where(
            ModelVersion.project_id == project_id,
            ModelVersion.backend == Backend.FAST,
            ModelVersion.status == ModelStatus.READY,
            ModelVersion.id.in_(select(ModelVote.model_version_id)),
        )
        .order_by(ModelVersion.id.desc())
        .limit(1)
    )


def model_votes(session: Session, project_id: int) -> dict[int, str]:
    """{post id: label} of `voting_version`'s votes (empty without one)."""
    version_id = voting_version(session, project_id)
    if version_id is None:
        return {}
    rows = session.execute(
        select(ModelVote.item_id, ModelVote.label).where(ModelVote.model_version_id == version_id)
    )
    return {item_id: label for item_id, label in rows}


def write_model_votes(session: Session, version_id: int, votes: Mapping[int, str]) -> None:
    """Store a fast version's cross-fitted votes (in the caller's transaction: with the version, or not at all)."""
    session.add_all(ModelVote(model_version_id=version_id, item_id=i, label=v) for i, v in votes.items())


def project_consensus(
    session: Session, project_id: int, split: Split | None = None
) -> dict[int, PostConsensus]:
    """The consensus of every post of the project (or of one split) that has one to give: an adjudication, an
    active control, or a label by an annotator who is not excluded. Tied majority votes are there with no label.
    Posts a researcher excluded after a flag are included (export marks them; db.versions leaves them out)."""
    controls = active_controls(session, project_id)
    excluded = excluded_users(session, project_id)
    adjudicated = _adjudications(session, project_id, split)
    found: dict[int, PostConsensus] = {
        item_id: PostConsensus(item_id, label, 1.0, ADJUDICATED) for item_id, label in adjudicated.items()
    }
    for item_id in _in_split(session, project_id, split, controls):
        found.setdefault(item_id, PostConsensus(item_id, controls[item_id], 1.0, CONTROL))

    answers = [a for a in _label_answers(session, project_id) if a.user_id not in excluded]
    # Only posts that still need their answers aggregated: adjudications and controls are decided.
    open_answers = [a for a in answers if a.item_id not in found and (split is None or a.split == split)]
    if aggregation_of(session, project_id) == RELIABILITY:
        languages = {a.language for a in open_answers}
        voted = model_votes(session, project_id)
        for language in sorted(languages):
            fit = _fit([a for a in answers if a.language == language], controls, voted)
            for item_id in sorted({a.item_id for a in open_answers if a.language == language}):
                index, probability = fit.label_of(item_id)
                found[item_id] = PostConsensus(item_id, LABELS[index], probability, RELIABILITY)
    else:
        votes: dict[int, list[str]] = defaultdict(list)
        for answer in open_answers:
            votes[answer.item_id].append(answer.label)
        for item_id, labels in votes.items():
            vote = consensus(labels)
            labelled = vote.label is not None
            found[item_id] = PostConsensus(
                item_id, vote.label, vote.agreement if labelled else None, vote.source
            )
    return dict(sorted(found.items()))


def fit_languages(session: Session, project_id: int) -> dict[str, LanguageFit]:
    """Per language of the answered posts, the reliability model (controls clamped to their gold label, excluded
    annotators left out) with every annotator's tallies and answers: one reading of the answers for the whole
    Annotators report."""
    controls = active_controls(session, project_id)
    excluded = excluded_users(session, project_id)
    votes = model_votes(session, project_id)
    by_language: dict[str, list[_Answer]] = defaultdict(list)
    for answer in _label_answers(session, project_id):
        by_language[answer.language].append(answer)
    fits = {}
    for language, answers in sorted(by_language.items()):
        counted = [a for a in answers if a.user_id not in excluded]
        users = tuple(sorted({a.user_id for a in answers}))
        fits[language] = LanguageFit(
            language=language,
            fit=_fit(counted, controls, votes) if counted else None,
            users=users,
            excluded=frozenset(u for u in users if u in excluded),
            tallies=_tallies(answers, controls),
            answers=tuple(
                LabelAnswer(a.item_id, a.user_id, a.label, a.seconds, a.item_id in controls) for a in answers
            ),
        )
    return fits


def _fit(
    answers: Sequence[_Answer], controls: Mapping[int, str], votes: Mapping[int, str]
) -> ReliabilityFit[int, int]:
    """Dawid-Skene over one language's answers, the answered controls clamped to their gold labels, and the
    model's votes (`model_votes`) as one more worker where at least two annotators answered or on a control
    (core.reliability.with_model_votes): a vote never labels a post alone nor overturns a lone annotator."""
    triples = [(a.item_id, a.user_id, LABELS.index(a.label)) for a in answers]
    answered = {a.item_id for a in answers}
    gold = {item_id: LABELS.index(label) for item_id, label in controls.items() if item_id in answered}
    voted = {item_id: LABELS.index(label) for item_id, label in votes.items() if item_id in answered}
    return dawid_skene(with_model_votes(triples, voted, gold), gold, n_classes=len(LABELS))


def _tallies(answers: Iterable[_Answer], controls: Mapping[int, str]) -> dict[int, AnnotatorTally]:
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for answer in answers:
        tally = counts[answer.user_id]
        tally[0] += 1
        if answer.item_id in controls:
            tally[1] += 1
            tally[2] += answer.label == controls[answer.item_id]
    return {user_id: AnnotatorTally(*counts[user_id]) for user_id in sorted(counts)}


def _label_answers(session: Session, project_id: int) -> list[_Answer]:
    """Every label answer of the project (all splits: the reliability model learns from them all)."""
    rows = session.execute(
        select(
            Annotation.item_id,
            Annotation.user_id,
            Annotation.label,
            Item.language,
            Item.split,
            Annotation.seconds,
        )
        .join(Item, Item.id == Annotation.item_id)
        .where(Item.project_id == project_id, Annotation.kind == AnnotationKind.LABEL)
        .order_by(Annotation.item_id, Annotation.user_id)
    )
    return [
        _Answer(item_id, user_id, label, language, split, seconds)
        for item_id, user_id, label, language, split, seconds in rows
        if label is not None  # the kind's CHECK constraint guarantees it; this tells the type checker
    ]


def _adjudications(session: Session, project_id: int, split: Split | None) -> dict[int, str]:
    query = (
        select(Adjudication.item_id, Adjudication.label)
        .join(Item, Item.id == Adjudication.item_id)
        .where(Item.project_id == project_id)
    )
    if split is not None:
        query = query.where(Item.split == split)
    return {item_id: label for item_id, label in session.execute(query)}


def _in_split(
    session: Session, project_id: int, split: Split | None, controls: Mapping[int, str]
) -> list[int]:
    """The active controls of the split (all of them without one)."""
    if split is None:
        return sorted(controls)
    return sorted(
        session.scalars(
            select(Item.id).where(Item.id.in_(active_controls_query(project_id)), Item.split == split)
        )
    )
