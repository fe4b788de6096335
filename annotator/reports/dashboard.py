"""What the researcher pages show: labels per language and label, throughput per annotator and day, agreement
(Cohen's kappa per annotator pair, Krippendorff's alpha per language), disagreements to adjudicate, the models'
per-language quality, and the project's sampling settings. Each function takes the signed-in user and checks
the role (annotator/accounts/access.py)."""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import combinations
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from annotator.accounts.access import RESEARCHERS, Actor, require_role
from annotator.annotation.agreement import AlphaAccumulator, cohen_kappa
from core.labels import LABELS
from core.metrics import Scores, VersionMetrics
from db.models import (
    Adjudication,
    Annotation,
    AnnotationKind,
    Item,
    ModelStatus,
    ModelVersion,
    Project,
    Split,
    User,
)
from db.snapshots import TrainingSnapshot
from db.versions import current_version, probabilities_of


def label_counts(session: Session, project: Project, by: Actor) -> dict[str, dict[str, int]]:
    """{language: {label: answers}} over the pool's labels (every annotator's answer counts)."""
    require_role(by, RESEARCHERS, "see the overview")
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(LABELS, 0))
    rows = session.execute(
        select(Item.language, Annotation.label, func.count())
        .join(Annotation, Annotation.item_id == Item.id)
        .where(
            Item.project_id == project.id, Item.split == Split.POOL, Annotation.kind == AnnotationKind.LABEL
        )
        .group_by(Item.language, Annotation.label)
    ).all()
    for language, label, n in rows:
        counts[language][str(label)] = int(n)
    return dict(sorted(counts.items()))


def answers_per_day(session: Session, project: Project, by: Actor) -> list[tuple[date, str, int]]:
    """(day, annotator, answers given in the app or Label Studio that day), oldest first."""
    require_role(by, RESEARCHERS, "see the overview")
    day = func.date(Annotation.updated_at)
    rows = session.execute(
        select(day, User.username, func.count())
        .join(Item, Item.id == Annotation.item_id)
        .join(User, User.id == Annotation.user_id)
        .where(Item.project_id == project.id, Annotation.source != "import")
        .group_by(day, User.username)
        .order_by(day)
    ).all()
    return [(d if isinstance(d, date) else date.fromisoformat(str(d)), name, int(n)) for d, name, n in rows]


def _labels_by_post(session: Session, project: Project) -> dict[int, dict[str, str]]:
    """{item id: {username: label}} for posts of the project with labels."""
    rows = session.execute(
        select(Annotation.item_id, User.username, Annotation.label)
        .join(Item, Item.id == Annotation.item_id)
        .join(User, User.id == Annotation.user_id)
        .where(Item.project_id == project.id, Annotation.kind == AnnotationKind.LABEL)
    ).all()
    by_post: dict[int, dict[str, str]] = defaultdict(dict)
    for item_id, username, label in rows:
        by_post[item_id][username] = str(label)
    return by_post


MIN_SHARED = 10
"""Posts an annotator must share with others before their own agreement is shown (fewer say little)."""


@dataclass(frozen=True)
class OwnAgreement:
    """An annotator's agreement with the others, on the posts they labelled too, and with the researchers'
    decisions on adjudicated posts."""

    shared_posts: int
    kappa: float | None
    """Cohen's kappa of this annotator's labels against each other annotator's on the same posts (pooled)."""
    adjudicated_posts: int
    matched_adjudications: int


def own_agreement(session: Session, project: Project, user: User) -> OwnAgreement:
    """What an annotator may see of their own agreement (nobody else's labels are shown), read from the posts
    they labelled only."""
    mine_posts = select(Annotation.item_id).where(
        Annotation.user_id == user.id, Annotation.kind == AnnotationKind.LABEL
    )
    rows = session.execute(
        select(Annotation.item_id, User.username, Annotation.label)
        .join(Item, Item.id == Annotation.item_id)
        .join(User, User.id == Annotation.user_id)
        .where(
            Item.project_id == project.id,
            Annotation.kind == AnnotationKind.LABEL,
            Annotation.item_id.in_(mine_posts),
        )
    ).all()
    by_post: dict[int, dict[str, str]] = defaultdict(dict)
    for item_id, username, label in rows:
        by_post[item_id][username] = str(label)
    mine, theirs = [], []
    shared = 0
    for labels in by_post.values():
        own = labels.get(user.username)
        others = [label for name, label in labels.items() if name != user.username]
        if own is None or not others:
            continue
        shared += 1
        mine += [own] * len(others)
        theirs += others
    decided = dict(
        session.execute(
            select(Adjudication.item_id, Adjudication.label).where(Adjudication.item_id.in_(mine_posts))
        ).all()
    )
    judged = [
        (by_post[i][user.username], label)
        for i, label in decided.items()
        if user.username in by_post.get(i, {})
    ]
    return OwnAgreement(
        shared_posts=shared,
        kappa=cohen_kappa(mine, theirs) if shared >= MIN_SHARED else None,
        adjudicated_posts=len(judged),
        matched_adjudications=sum(own == final for own, final in judged),
    )


@dataclass(frozen=True)
class PairAgreement:
    first: str
    second: str
    posts: int
    kappa: float | None


@dataclass(frozen=True)
class LanguageAgreement:
    language: str
    posts: int
    """Posts labelled by two or more annotators."""
    alpha: float | None


def agreement(
    session: Session, project: Project, by: Actor
) -> tuple[list[PairAgreement], list[LanguageAgreement]]:
    """Cohen's kappa for every pair of annotators with shared posts; Krippendorff's alpha per language."""
    require_role(by, RESEARCHERS, "see agreement")
    by_post = _labels_by_post(session, project)
    languages = (
        dict(session.execute(select(Item.id, Item.language).where(Item.id.in_(list(by_post)))).all())
        if by_post
        else {}
    )
    shared: dict[tuple[str, str], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    alphas: dict[str, AlphaAccumulator] = defaultdict(AlphaAccumulator)
    for item_id, labels in by_post.items():
        alphas[languages[item_id]].add(labels.values())
        for x, y in combinations(sorted(labels), 2):
            shared[(x, y)][0].append(labels[x])
            shared[(x, y)][1].append(labels[y])
    pairs = [PairAgreement(x, y, len(a), cohen_kappa(a, b)) for (x, y), (a, b) in sorted(shared.items())]
    per_language = [
        LanguageAgreement(lang, acc.units, acc.alpha()) for lang, acc in sorted(alphas.items()) if acc.units
    ]
    return pairs, per_language


@dataclass(frozen=True)
class Disagreement:
    item_id: int
    external_id: str
    text: str
    language: str
    labels: dict[str, str]
    """{annotator: label}"""
    adjudicated: str | None
    suggestion: tuple[str, float] | None = None
    """The current model version's label for the post and its probability, where it scored the post."""


def _suggestion(probabilities: Sequence[float] | None) -> tuple[str, float] | None:
    if probabilities is None:
        return None
    best = max(range(len(LABELS)), key=lambda i: probabilities[i])
    return LABELS[best], float(probabilities[best])


def disagreements(session: Session, project: Project, by: Actor, limit: int = 200) -> list[Disagreement]:
    """Posts whose annotators gave different labels, the unadjudicated first."""
    require_role(by, RESEARCHERS, "adjudicate")
    by_post = {
        i: labels for i, labels in _labels_by_post(session, project).items() if len(set(labels.values())) > 1
    }
    if not by_post:
        return []
    items = {item.id: item for item in session.scalars(select(Item).where(Item.id.in_(list(by_post))))}
    decided = dict(
        session.execute(
            select(Adjudication.item_id, Adjudication.label).where(Adjudication.item_id.in_(list(by_post)))
        ).all()
    )
    version = current_version(session, project.id)
    scored = probabilities_of(session, version.id, list(by_post)) if version is not None else {}
    found = [
        Disagreement(
            i,
            items[i].external_id,
            items[i].text,
            items[i].language,
            dict(sorted(labels.items())),
            decided.get(i),
            _suggestion(scored.get(i)),
        )
        for i, labels in by_post.items()
    ]
    found.sort(key=lambda d: (d.adjudicated is not None, d.item_id))
    return found[:limit]


@dataclass(frozen=True)
class VersionSummary:
    id: int
    backend: str
    status: str
    current: bool
    macro_f1: float | None
    interval: tuple[float, float] | None
    topic_f1: float | None
    stance_f1: float | None
    per_language: dict[str, Scores]
    bias_gap: float | None
    """Spread of per-language macro-F1 (best minus worst language with at least 5 eval posts)."""
    confusion: list[list[int]] | None
    trained_on: int | None
    """Posts this round trained on (an incremental LoRA round: the new labels and a replay sample)."""
    labels: int | None
    """Consensus labels the version knew of: the x-axis of the learning curve."""
    created: str
    error: str | None
    calibration: Mapping[str, Any] = field(default_factory=dict)
    """core.calibration's report: the temperature and expected calibration error before and after, per language."""
    member_weights: list[dict[str, Any]] = field(default_factory=list)
    """An ensemble's weights by language (core.ensemble_weights): one row per language and member, language
    "other languages" for those without eval labels; empty for any other version."""


def _bias_gap(per_language: dict[str, Scores], min_posts: int = 5) -> float | None:
    values = [m.macro_f1 for m in per_language.values() if m.n >= min_posts and m.macro_f1 is not None]
    return round(max(values) - min(values), 4) if len(values) >= 2 else None


def version_summaries(session: Session, project: Project, by: Actor) -> list[VersionSummary]:
    """Every model version, oldest first, with what the models page plots."""
    require_role(by, RESEARCHERS, "see the models")
    versions = session.scalars(
        select(ModelVersion).where(ModelVersion.project_id == project.id).order_by(ModelVersion.id)
    ).all()
    summaries = []
    for v in versions:
        metrics = VersionMetrics.of(v.metrics)
        snapshot = TrainingSnapshot.of(v.training_snapshot)
        overall = metrics.overall
        summaries.append(
            VersionSummary(
                id=v.id,
                backend=v.backend,
                status=v.status.value,
                current=v.is_current,
                macro_f1=overall.macro_f1 if overall else None,
                interval=overall.interval if overall else None,
                topic_f1=overall.topic_f1 if overall else None,
                stance_f1=overall.stance_f1 if overall else None,
                per_language=metrics.languages,
                bias_gap=_bias_gap(metrics.languages),
                confusion=overall.confusion if overall else None,
                trained_on=snapshot.trained_on,
                labels=snapshot.label_count,
                created=v.created_at.strftime("%Y-%m-%d %H:%M"),
                error=(v.error or "")[-500:] if v.status == ModelStatus.FAILED else None,
                calibration=metrics.calibration,
                member_weights=_member_weights(snapshot, {m.id: m.backend for m in versions}),
            )
        )
    return summaries


OTHER_LANGUAGES = "other languages"


def _member_weights(snapshot: TrainingSnapshot, backends: Mapping[int, str]) -> list[dict[str, Any]]:
    """Rows of an ensemble's weights (language, member, weight) for the Models page."""
    weights = snapshot.language_weights
    if weights is None:
        return []
    names = [f"version {m} ({backends.get(m, '?')})" for m in snapshot.members]
    languages = [*sorted(weights.by_language), OTHER_LANGUAGES]
    return [
        {"language": language, "member": name, "weight": weight}
        for language in languages
        for name, weight in zip(names, weights.by_language.get(language, weights.unlabelled), strict=True)
    ]
