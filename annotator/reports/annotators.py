"""The Annotators report (researchers): per annotator and language, their answers, accuracy on control posts with
a 95% interval, the reliability model's estimated confusion matrix and accuracy, speed, agreement with the
others, exclusion, qualification, and a flag when they are far below the others."""

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.accounts.access import RESEARCHERS, Actor, require_role
from annotator.quality.exclusions import standing_exclusions
from annotator.quality.qualification import Standing, standings
from annotator.quality.settings import quality_settings
from core.labels import LABELS
from core.languages import language_name
from core.quality import QualitySettings
from core.reliability import (
    MIN_CONTROL_ANSWERS,
    MODEL_VOTER,
    estimated_accuracy,
    peer_accuracy,
    reliability_flag,
    wilson_interval,
)
from db.consensus import LabelAnswer, LanguageFit, fit_languages, voting_version
from db.models import Item, Project, User
from db.quality import active_controls_query


@dataclass(frozen=True)
class AnnotatorRow:
    """One annotator in one language."""

    username: str
    language: str
    answers: int
    """Labels given on the language's posts (controls included; skips and flags are not answers here)."""
    control_answers: int
    control_correct: int
    control_accuracy: float | None
    """Share of control answers matching the gold label; None ("not measured yet") below MIN_CONTROL_ANSWERS."""
    control_interval: tuple[float, float] | None
    """The 95% Wilson interval of control_accuracy (None when it is)."""
    confusion: tuple[tuple[float, ...], ...] | None
    """The reliability model's estimate, rows the true label and columns the given one, both in LABELS order
    (rows sum to 1); None where the language has no fit."""
    estimated_accuracy: float | None
    median_seconds: float | None
    agreement: float | None
    """Share of their labels, on posts others labelled too, that match the others' majority (None: no such post)."""
    shared_posts: int
    excluded: bool
    exclusion_note: str
    qualification: str | None
    """Where they stand in the language's qualification round; None when qualification is off."""
    flag: str | None
    """Why they look far below the others, in a researcher's words; None when nothing says so."""

    def as_json(self) -> dict[str, Any]:
        return {
            **{name: getattr(self, name) for name in self.__dataclass_fields__},
            "control_interval": list(self.control_interval) if self.control_interval else None,
            "confusion": [list(row) for row in self.confusion] if self.confusion else None,
        }


@dataclass(frozen=True)
class AnnotatorReport:
    rows: list[AnnotatorRow]
    controls: dict[str, int]
    """Active control posts per language."""
    settings: QualitySettings
    min_control_answers: int = MIN_CONTROL_ANSWERS
    languages: list[str] = field(default_factory=list)
    voting_version: int | None = None
    """The fast version whose cross-fitted votes the reliability model counts (None: no votes counted)."""
    model_accuracy: dict[str, float] = field(default_factory=dict)
    """Per language where its votes counted, the reliability model's estimate of the model voter's accuracy."""

    def in_language(self, language: str) -> list[AnnotatorRow]:
        return [row for row in self.rows if row.language == language]


def annotator_report(session: Session, project: Project, by: Actor) -> AnnotatorReport:
    """Every annotator who labelled a post of the project in each language they labelled, by language then
    username. Read from the same fit the consensus uses (db/consensus.py), so the figures agree with it."""
    require_role(by, RESEARCHERS, "see how reliable each annotator is")
    settings = quality_settings(project)
    fits = fit_languages(session, project.id)
    ids = {user_id for fit in fits.values() for user_id in fit.users}
    users = {user.id: user for user in session.scalars(select(User).where(User.id.in_(ids)))}
    notes = {standing.user_id: standing.note for standing in standing_exclusions(session, project)}
    qualification = _qualification_states(session, project, users.values()) if settings.qualification else {}
    rows = [
        row
        for language in sorted(fits)
        for row in _language_rows(fits[language], users, notes, qualification)
    ]
    control_languages = _control_languages(session, project)
    return AnnotatorReport(
        rows=rows,
        controls=dict(sorted(Counter(control_languages.values()).items())),
        settings=settings,
        languages=sorted(fits),
        voting_version=voting_version(session, project.id),
        model_accuracy={
            language: estimated_accuracy(fit.fit.confusion[MODEL_VOTER], fit.fit.priors)
            for language, fit in sorted(fits.items())
            if fit.fit is not None and MODEL_VOTER in fit.fit.confusion
        },
    )


def _control_languages(session: Session, project: Project) -> dict[int, str]:
    rows = session.execute(
        select(Item.id, Item.language).where(Item.id.in_(active_controls_query(project.id)))
    )
    return {item_id: language for item_id, language in rows}


def _qualification_states(
    session: Session, project: Project, users: Iterable[User]
) -> dict[tuple[int, str], str]:
    """{(user id, language): where they stand}, from the qualification rounds."""
    states = {}
    for user in users:
        for standing in standings(session, project, user):
            states[(user.id, standing.language)] = _describe_standing(standing)
    return states


def _describe_standing(standing: Standing) -> str:
    match standing.state:
        case "qualifying":
            return f"qualifying: {standing.answered} of {standing.needed} controls answered"
        case "failed":
            return f"failed: {standing.correct} of {standing.answered} right (round {standing.attempt})"
        case "no controls":
            return f"stuck: no control left to answer ({standing.answered} of {standing.needed} answered)"
        case state:
            return state


def _language_rows(
    fit: LanguageFit,
    users: dict[int, User],
    notes: dict[int, str],
    qualification: dict[tuple[int, str], str],
) -> list[AnnotatorRow]:
    model = fit.fit
    agreement = _agreement_with_others(fit.answers)
    # The model's estimate of an annotator means something only where their answers can be checked: on controls
    # or on posts others labelled too. Without that it is the prior's number, made from nothing: not shown.
    evidenced = {
        user_id
        for user_id in fit.users
        if fit.tallies[user_id].control_answers + agreement.get(user_id, (None, 0))[1] >= MIN_CONTROL_ANSWERS
    }
    estimated = (
        {
            user_id: estimated_accuracy(matrix, model.priors)
            for user_id, matrix in model.confusion.items()
            if user_id in evidenced
        }
        if model is not None
        else {}
    )
    seconds: dict[int, list[float]] = defaultdict(list)
    for answer in fit.answers:
        if answer.seconds is not None:
            seconds[answer.user_id].append(answer.seconds)
    rows = []
    for user_id in fit.users:
        tally = fit.tallies[user_id]
        measured = tally.control_answers >= MIN_CONTROL_ANSWERS
        accuracy = estimated.get(user_id)
        matrix = model.confusion.get(user_id) if model is not None and user_id in evidenced else None
        share, shared = agreement.get(user_id, (None, 0))
        rows.append(
            AnnotatorRow(
                username=users[user_id].username,
                language=fit.language,
                answers=tally.answers,
                control_answers=tally.control_answers,
                control_correct=tally.control_right,
                control_accuracy=tally.control_right / tally.control_answers if measured else None,
                control_interval=wilson_interval(tally.control_right, tally.control_answers)
                if measured
                else None,
                confusion=None if matrix is None else tuple(tuple(float(p) for p in row) for row in matrix),
                estimated_accuracy=accuracy,
                median_seconds=statistics.median(seconds[user_id]) if seconds[user_id] else None,
                agreement=share,
                shared_posts=shared,
                excluded=user_id in fit.excluded,
                exclusion_note=notes.get(user_id, ""),
                qualification=qualification.get((user_id, fit.language)),
                flag=reliability_flag(
                    tally.control_right,
                    tally.control_answers,
                    accuracy,
                    peer_accuracy(estimated, user_id),
                    answers=tally.answers,
                ),
            )
        )
    return sorted(rows, key=lambda row: row.username)


def _agreement_with_others(answers: Sequence[LabelAnswer]) -> dict[int, tuple[float | None, int]]:
    """{user id: (share of their labels matching the others' majority, posts counted)}; a post where the others
    tie has no majority and is not counted."""
    by_post: dict[int, dict[int, str]] = defaultdict(dict)
    for answer in answers:
        by_post[answer.item_id][answer.user_id] = answer.label
    matched: Counter[int] = Counter()
    counted: Counter[int] = Counter()
    for labels in by_post.values():
        for user_id, label in labels.items():
            ranked = Counter(other for who, other in labels.items() if who != user_id).most_common(2)
            if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
                continue
            counted[user_id] += 1
            matched[user_id] += label == ranked[0][0]
    users = {answer.user_id for answer in answers}
    return {
        user_id: (matched[user_id] / counted[user_id] if counted[user_id] else None, counted[user_id])
        for user_id in users
    }


def confusion_cells(row: AnnotatorRow) -> list[dict[str, Any]]:
    """The row's confusion matrix as one record per cell (true label, given label, share), for a heatmap."""
    if row.confusion is None:
        return []
    return [
        {"true label": LABELS[t], "given label": LABELS[g], "share": share}
        for t, shares in enumerate(row.confusion)
        for g, share in enumerate(shares)
    ]


def model_votes_text(report: AnnotatorReport) -> str:
    """One sentence on the fast model's votes in the reliability model: counted (from which version, how accurate
    per language), off, not made yet, or not used by the majority vote."""
    settings = report.settings
    if settings.aggregation != "reliability":
        return "Model votes: not used (the majority vote counts the annotators alone)."
    if not settings.model_votes:
        return "Model votes: off (the reliability model weighs the annotators' answers alone)."
    if report.voting_version is None:
        return (
            "Model votes: none yet. The next fast-model retrain leaves its cross-fitted votes on the labelled "
            "posts, and the reliability model counts them as one more voter where two or more annotators "
            "labelled a post."
        )
    accuracies = ", ".join(
        f"{language_name(language)} {share:.0%}" for language, share in report.model_accuracy.items()
    )
    return (
        f"Model votes: the cross-fitted votes of fast version {report.voting_version} (each post predicted by a "
        "model that did not train on it) count as one more voter where two or more annotators labelled a post"
        + (f"; its estimated accuracy: {accuracies}." if accuracies else ".")
    )
