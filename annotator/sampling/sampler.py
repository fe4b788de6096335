"""The active-learning sampler: which posts to label next.

A strategy (by versioned name) ranks candidate posts by the current model version's stored probabilities;
language-aware quotas decide how many posts each language gets, favouring languages whose evaluation F1 is low or
whose labels are few; a random share guards against sampling bias. Without a ready model version the batch is
random, stratified by language (cold start). Eval posts, posts with all the annotations wanted, flagged posts and
posts already queued are never chosen. Each batch is recorded with its strategy, model version and counts.

The uncertainty scores are small-text's query strategies (LeastConfidence, PredictionEntropy, BreakingTies):
`uncertainty` computes them over a probability matrix (the simulation, and the order within a batch), and every
predictions row stores them (confidence, margin, entropy) with an index each, so that `select_batch` reads only
the most uncertain posts of each language instead of the whole pool. tests/unit/annotator/sampling/test_sampler.py checks
that both rank posts exactly as small-text does.
"""

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from sqlalchemy import ColumnElement, ScalarSelect, Select, and_, exists, func, or_, select, union
from sqlalchemy.orm import Session

from annotator.sampling.settings import SamplingSettings
from annotator.sampling.strategies import get_strategy, uncertainty
from core.metrics import VersionMetrics
from db.models import (
    Annotation,
    AnnotationKind,
    FlagDecision,
    FlagReview,
    Item,
    ModelVersion,
    Prediction,
    Project,
    QueueEntry,
    SamplingBatch,
    Split,
)
from db.quality import active_controls_query
from db.versions import current_version, probabilities_of

FAVOUR_BOOST = 2.0
"""How much more weight a favoured language gets in the quotas."""


@dataclass(frozen=True)
class LanguageState:
    available: int
    """Candidate posts in this language."""
    labels: int
    """Posts of this language with a label already."""
    f1: float | None
    """The current version's evaluation macro-F1 on this language, if it was evaluated."""
    favoured: bool = False
    """A researcher asked for more posts in this language (the sampling settings' `favour`)."""


def language_priority(state: LanguageState) -> float:
    """Rises where the model is weak and where labels are few (the study: a few dozen labels per language
    fix much of the stance gap)."""
    weakness = 1.0 - state.f1 if state.f1 is not None else 1.0
    scarcity = 1.0 / math.sqrt(1.0 + state.labels / 25.0)
    return max(weakness, 0.05) * scarcity


def language_weight(state: LanguageState, size_exponent: float) -> float:
    """Priority times the language's pool size to a power: 0 splits by priority alone (every language alike),
    1 in proportion to the pool as well; in between, small languages are favoured while the model is weak on
    them and hand the batch back to the large ones as they catch up."""
    boost = FAVOUR_BOOST if state.favoured else 1.0
    return boost * language_priority(state) * math.pow(state.available, size_exponent)


def language_quotas(
    states: Mapping[str, LanguageState],
    n: int,
    *,
    floor: int = 1,
    ceiling_share: float = 0.5,
    size_exponent: float = 0.5,
) -> dict[str, int]:
    """Split n posts over languages in proportion to their weight (`language_weight`), each between `floor` and
    `ceiling_share * n` (and never above what is available); what a capped language cannot take goes to the
    others."""
    open_languages = {lang: s for lang, s in states.items() if s.available > 0}
    if not open_languages or n <= 0:
        return {}
    ceiling = max(1, math.ceil(ceiling_share * n))
    caps = {lang: min(s.available, ceiling) for lang, s in open_languages.items()}
    quotas = {lang: min(floor, caps[lang]) for lang in open_languages}
    remaining = n - sum(quotas.values())
    if remaining < 0:  # more languages than posts: the highest priorities get the floor
        ranked = sorted(open_languages, key=lambda lang: -language_priority(open_languages[lang]))
        return {lang: 1 for lang in ranked[:n]}
    while remaining > 0:
        growing = {
            lang: language_weight(s, size_exponent)
            for lang, s in open_languages.items()
            if quotas[lang] < caps[lang]
        }
        if not growing:
            if all(caps[lang] == open_languages[lang].available for lang in caps):
                break
            # The ceiling keeps one language from taking the batch while others wait; with none waiting,
            # it gives way to what is available.
            caps = {lang: s.available for lang, s in open_languages.items()}
            continue
        total = sum(growing.values())
        shares = {lang: remaining * p / total for lang, p in growing.items()}
        added = 0
        for lang in sorted(growing, key=lambda lang: -shares[lang]):
            extra = min(caps[lang] - quotas[lang], max(1, math.floor(shares[lang])), remaining - added)
            if extra <= 0:
                continue
            quotas[lang] += extra
            added += extra
            if added >= remaining:
                break
        remaining -= added
    return {lang: q for lang, q in quotas.items() if q > 0}


def catch_up_quotas(
    states: Mapping[str, LanguageState],
    n: int,
    *,
    target: int = SamplingSettings.catch_up,
    max_share: float = SamplingSettings.catch_up_share,
    ceiling_share: float = SamplingSettings.ceiling_share,
) -> dict[str, int]:
    """Quotas only for languages that have fewer than `target` labels (the study: a few dozen labels per language
    fix much of the stance gap), at most `max_share` of the batch and never more than a language still needs;
    the rest of the batch goes to one language-blind ranking. As languages catch up the quotas fade out, so a
    long run ends up where language-blind sampling would."""
    needs = {
        lang: min(target - s.labels, s.available)
        for lang, s in states.items()
        if s.labels < target and s.available
    }
    budget = min(round(n * max_share), sum(needs.values()))
    if budget <= 0:
        return {}
    quotas = language_quotas({lang: states[lang] for lang in needs}, budget, ceiling_share=ceiling_share)
    return {lang: min(q, needs[lang]) for lang, q in quotas.items() if min(q, needs[lang]) > 0}


def _labels_per_item() -> ScalarSelect[int]:
    return (
        select(func.count())
        .select_from(Annotation)
        .where(Annotation.item_id == Item.id, Annotation.kind == AnnotationKind.LABEL)
        .scalar_subquery()
    )


def _open_posts(project: Project, *, walk_scores: bool = False) -> ColumnElement[bool]:
    """Pool posts that still need labels, are not flagged, are not queued yet and are not controls (those are
    served beside the queue, to every annotator once).

    walk_scores: write the items' own conditions so that SQLite cannot use the items' language index for them;
    its planner then walks the predictions' score index in order and stops after LIMIT rows instead of reading
    every post of the project (PostgreSQL's planner finds that plan by itself)."""
    flagged = Item.id.in_(flag_blocked_items())
    queued = exists().where(QueueEntry.project_id == project.id, QueueEntry.item_id == Item.id)
    project_id: ColumnElement[int] = Item.project_id + 0 if walk_scores else Item.project_id  # type: ignore[assignment]
    split: ColumnElement[str] = func.lower(Item.split) if walk_scores else Item.split  # type: ignore[assignment]
    return and_(
        project_id == project.id,
        split == Split.POOL.value,
        ~flagged,
        ~queued,
        Item.id.not_in(active_controls_query(project.id)),
        _labels_per_item() < project.overlap,
    )


def _language_is(language: str, *, walk_scores: bool) -> ColumnElement[bool]:
    return (func.lower(Item.language) if walk_scores else Item.language) == language


def _walks_scores(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def open_counts(
    session: Session, project: Project, *, count_queued: bool = False, answered_by: int | None = None
) -> dict[str, int]:
    """Open posts per language, counted as all pool posts minus the few that are labelled, flagged or (unless
    count_queued) already queued, so that no query reads the whole pool; with `answered_by` (a user id), also
    minus the posts that user answered (labelled or skipped): what is left for them. Control posts are never
    open: they are served beside the queue and their answers are not labels of the corpus."""
    pool = dict(
        session.execute(
            select(Item.language, func.count())
            .where(Item.project_id == project.id, Item.split == Split.POOL)
            .group_by(Item.language)
        ).all()
    )
    labelled_enough = (
        select(Annotation.item_id)
        .where(Annotation.kind == AnnotationKind.LABEL)
        .group_by(Annotation.item_id)
        .having(func.count() >= project.overlap)
    )
    flagged = flag_blocked_items()
    queued = select(QueueEntry.item_id).where(QueueEntry.project_id == project.id)
    controls = active_controls_query(project.id)
    done = [Item.id.in_(labelled_enough), Item.id.in_(flagged), Item.id.in_(controls)] + (
        [] if count_queued else [Item.id.in_(queued)]
    )
    if answered_by is not None:
        done.append(Item.id.in_(select(Annotation.item_id).where(Annotation.user_id == answered_by)))
    closed = dict(
        session.execute(
            select(Item.language, func.count())
            .where(Item.project_id == project.id, Item.split == Split.POOL, or_(*done))
            .group_by(Item.language)
        ).all()
    )
    return {
        lang: count - int(closed.get(lang, 0)) for lang, count in pool.items() if count > closed.get(lang, 0)
    }


def labelled_counts(session: Session, project: Project) -> dict[str, int]:
    """Pool posts with at least one label, per language (control posts' answers are not labels of the corpus)."""
    return {
        lang: int(count)
        for lang, count in session.execute(
            select(Item.language, func.count(func.distinct(Item.id)))
            .join(Annotation, Annotation.item_id == Item.id)
            .where(
                Item.project_id == project.id,
                Item.split == Split.POOL,
                Annotation.kind == AnnotationKind.LABEL,
                Item.id.not_in(active_controls_query(project.id)),
            )
            .group_by(Item.language)
        ).all()
    }


def language_states(
    session: Session, project: Project, available: Mapping[str, int], version: ModelVersion | None
) -> dict[str, LanguageState]:
    labelled = labelled_counts(session, project)
    metrics = VersionMetrics.of(version.metrics if version is not None else None)
    favour = set(SamplingSettings.of(project).favour)
    return {
        lang: LanguageState(
            available=count,
            labels=labelled.get(lang, 0) if version is not None else 0,
            f1=metrics.f1_of(lang),
            favoured=lang in favour,
        )
        for lang, count in available.items()
    }


@dataclass(frozen=True)
class LanguageNeed:
    """Why a language's posts come first, for the annotators who label it."""

    language: str
    labels: int
    target: int
    """Labels the sampler gives this language a quota for (`catch_up`), before it competes with the others."""
    f1: float | None
    priority: float

    @property
    def still_needed(self) -> int:
        return max(0, self.target - self.labels)


def language_needs(session: Session, project: Project, languages: Sequence[str]) -> list[LanguageNeed]:
    """For each of the given languages (every language of the pool when empty): labels so far against the
    sampler's target, the current model's F1 there, and its priority; the most urgent first."""
    available = open_counts(session, project)
    version = current_version(session, project.id)
    wanted = list(languages) or sorted(available)
    states = language_states(session, project, {lang: available.get(lang, 0) for lang in wanted}, version)
    labelled = labelled_counts(session, project)
    target = SamplingSettings.of(project).catch_up
    needs = [
        LanguageNeed(
            lang,
            labelled.get(lang, 0),
            target,
            state.f1,
            language_priority(
                replace(state, labels=labelled.get(lang, 0))
            ),  # labels count before a first model too
        )
        for lang, state in states.items()
    ]
    return sorted(needs, key=lambda need: -need.priority)


def _most_uncertain(
    session: Session, project: Project, version: ModelVersion, strategy: str, language: str, n: int
) -> list[int]:
    """The n open posts of a language that the strategy ranks first, read through the score's index."""
    if n <= 0:
        return []
    walk = _walks_scores(session)
    query = (
        select(Item.id)
        .join(Prediction, and_(Prediction.item_id == Item.id, Prediction.model_version_id == version.id))
        .where(_open_posts(project, walk_scores=walk), _language_is(language, walk_scores=walk))
        .order_by(get_strategy(strategy).stored_order, Prediction.id)
        .limit(n)
    )
    return list(session.scalars(query))


def _most_uncertain_anywhere(
    session: Session, project: Project, version: ModelVersion, strategy: str, n: int, taken: set[int]
) -> list[tuple[int, str]]:
    """The n open posts of any language that the strategy ranks first (and that this batch has not taken)."""
    if n <= 0:
        return []
    query = (
        select(Item.id, Item.language)
        .join(Prediction, and_(Prediction.item_id == Item.id, Prediction.model_version_id == version.id))
        .where(_open_posts(project, walk_scores=_walks_scores(session)))
        .order_by(get_strategy(strategy).stored_order, Prediction.id)
        .limit(n + len(taken))
    )
    return [(item_id, lang) for item_id, lang in session.execute(query) if item_id not in taken][:n]


def batch_quotas(
    states: Mapping[str, LanguageState], n: int, settings: SamplingSettings, *, cold: bool
) -> tuple[dict[str, int], int]:
    """(posts per language, posts left to the language-blind ranking). Cold start: every language alike. Then,
    by the project's `quota_mode`: `catch_up` (default) gives quotas only to languages with fewer than
    `catch_up` labels and the rest to the blind ranking; `weighted` splits every batch by weight."""
    if cold or settings.quota_mode == "weighted":
        return language_quotas(states, n, ceiling_share=settings.ceiling_share), 0
    quotas = catch_up_quotas(
        states,
        n,
        target=settings.catch_up,
        max_share=settings.catch_up_share,
        ceiling_share=settings.ceiling_share,
    )
    return quotas, n - sum(quotas.values())


def _random_open(
    session: Session, project: Project, language: str, n: int, rng: np.random.Generator, taken: set[int]
) -> list[int]:
    """n open posts of a language drawn at random: each draw seeks the first open post at or after a random
    id (an index lookup, not a scan of the pool); a small or sparse pool falls back to ORDER BY random()."""
    if n <= 0:
        return []
    lowest, highest = session.execute(
        select(func.min(Item.id), func.max(Item.id)).where(
            Item.project_id == project.id, Item.split == Split.POOL, Item.language == language
        )
    ).one()
    if lowest is None:
        return []
    chosen: list[int] = []
    for start in rng.integers(lowest, highest + 1, size=4 * n + 8).tolist():
        if len(chosen) == n:
            return chosen
        found = session.scalar(
            select(Item.id)
            .where(_open_posts(project), Item.language == language, Item.id >= start)
            .order_by(Item.id)
            .limit(1)
        )
        if found is not None and found not in taken:
            taken.add(found)
            chosen.append(found)
    rest = session.scalars(
        select(Item.id)
        .where(_open_posts(project), Item.language == language, Item.id.not_in(taken))
        .order_by(func.random())
        .limit(n - len(chosen))
    )
    for found in rest:
        taken.add(found)
        chosen.append(found)
    return chosen


def _scores_of(
    session: Session, version: ModelVersion | None, strategy: str, item_ids: list[int]
) -> dict[int, float]:
    """The strategy's uncertainty of each chosen post (higher = serve sooner)."""
    if version is None or not item_ids or strategy == "random.v1":
        return {}
    found = probabilities_of(session, version.id, item_ids)
    scores = uncertainty(strategy, np.array(list(found.values()), dtype=np.float64).reshape(-1, 4))
    return dict(zip(found, scores.tolist(), strict=True))


def select_batch(
    session: Session,
    project: Project,
    n: int = 50,
    *,
    strategy: str | None = None,
    random_share: float | None = None,
    seed: int | None = None,
) -> SamplingBatch:
    """Choose up to n posts, queue them for annotators, and record the batch.

    Reads only what it needs: counts per language, then per language the most uncertain open posts through
    the version's score index and a random share by index seeks, so a batch from a million-post pool takes
    well under a second (bench/sampler.py)."""
    settings = SamplingSettings.of(project)
    strategy = strategy or settings.strategy
    get_strategy(strategy)  # a clear error for an unknown name, before any work
    share = settings.random_share if random_share is None else random_share
    version = current_version(session, project.id)
    states = language_states(session, project, open_counts(session, project), version)
    quotas, blind = batch_quotas(states, n, settings, cold=version is None)
    batch_seed = seed if seed is not None else int(session.scalar(select(func.count(SamplingBatch.id))) or 0)
    rng = np.random.default_rng(batch_seed)
    chosen: list[tuple[int, str, str]] = []  # (item id, language, reason)
    taken: set[int] = set()
    for lang, quota in quotas.items():
        if version is None or strategy == "random.v1":
            reason, ranked = ("cold start" if version is None else "random"), []
        else:
            reason = "uncertain"
            ranked = _most_uncertain(session, project, version, strategy, lang, quota - round(quota * share))
        taken.update(ranked)
        randoms = _random_open(session, project, lang, quota - len(ranked), rng, taken)
        chosen += [(item_id, lang, reason) for item_id in ranked]
        chosen += [(item_id, lang, "random" if reason == "uncertain" else reason) for item_id in randoms]
    if blind > 0 and version is not None:  # the rest of the batch: one language-blind ranking
        ranked_any = (
            []
            if strategy == "random.v1"
            else _most_uncertain_anywhere(
                session, project, version, strategy, blind - round(blind * share), taken
            )
        )
        taken.update(item_id for item_id, _ in ranked_any)
        chosen += [(item_id, lang, "uncertain") for item_id, lang in ranked_any]
        languages = [lang for lang, s in states.items() if s.available]
        weights = np.array([states[lang].available for lang in languages], dtype=np.float64)
        draws = blind - len(ranked_any) if languages else 0  # near the end of the pool nothing may be left
        drawn = rng.choice(languages, size=draws, p=weights / weights.sum()).tolist() if draws > 0 else []
        for lang in drawn:
            chosen += [
                (item_id, lang, "random") for item_id in _random_open(session, project, lang, 1, rng, taken)
            ]
    scores = _scores_of(session, version, strategy, [item_id for item_id, _, _ in chosen])
    order = rng.permutation(len(chosen)) if not scores else None
    if order is not None:
        chosen = [chosen[i] for i in order]
    chosen.sort(key=lambda entry: -scores.get(entry[0], 0.0))
    counts: Counter[str] = Counter()
    for _, lang, reason in chosen:
        counts[lang] += 1
        counts[f"{lang}:{reason}"] += 1
    batch = SamplingBatch(
        project_id=project.id,
        strategy=strategy if version else "random.v1 (cold start)",
        model_version_id=version.id if version else None,
        size=len(chosen),
        per_language=dict(counts),
    )
    session.add(batch)
    session.flush()
    session.add_all(
        [
            QueueEntry(project_id=project.id, item_id=item_id, batch_id=batch.id, rank=rank, reason=reason)
            for rank, (item_id, _, reason) in enumerate(chosen)
        ]
    )
    session.flush()
    return batch


def flag_blocked_items() -> Select[tuple[int]]:
    """Ids of the posts that flags keep out of serving and sampling: flagged and not reviewed since the flag, or
    reviewed as excluded or relabelled."""
    pending = (
        select(Annotation.item_id)
        .outerjoin(FlagReview, FlagReview.item_id == Annotation.item_id)
        .where(
            Annotation.kind == AnnotationKind.FLAG,
            or_(FlagReview.id.is_(None), Annotation.updated_at > FlagReview.created_at),
        )
    )
    closed = select(FlagReview.item_id).where(FlagReview.decision != FlagDecision.RETURNED)
    return select(union(pending, closed).subquery().c[0])
