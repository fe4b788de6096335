"""A stopping signal per language: when successive model versions agree on almost every pool post of a language,
more labels in that language no longer change the model much (small-text's KappaAverage: the mean Cohen's kappa
between the predictions of successive versions over a window, against a threshold)."""

from collections import defaultdict
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.annotation.agreement import cohen_kappa
from db.models import Item, ModelStatus, ModelVersion, Project, Split
from db.versions import stream_probabilities

WINDOW = 3
THRESHOLD = 0.99


@dataclass(frozen=True)
class StopSignal:
    language: str
    kappas: list[float]
    """Kappa between each pair of successive ready versions, oldest first."""
    stable: bool
    """The mean of the last `window` kappas reached the threshold."""

    @property
    def message(self) -> str:
        if len(self.kappas) == 0:
            return "needs two model versions"
        if self.stable:
            return "labels in this language no longer change the model much"
        return "the model is still changing"


def stopping_signals(
    session: Session, project: Project, *, window: int = WINDOW, threshold: float = THRESHOLD
) -> dict[str, StopSignal]:
    """Per language of the pool, from the predicted labels of the project's ready versions in order."""
    versions = session.scalars(
        select(ModelVersion.id)
        .where(ModelVersion.project_id == project.id, ModelVersion.status == ModelStatus.READY)
        .order_by(ModelVersion.id)
    ).all()
    pool: dict[int, str] = {
        item_id: language
        for item_id, language in session.execute(
            select(Item.id, Item.language).where(Item.project_id == project.id, Item.split == Split.POOL)
        )
    }
    predicted: list[dict[int, int]] = []
    languages: dict[int, str] = {}
    for version_id in versions:
        labels = {}
        for item_id, probabilities, _ in stream_probabilities(session, version_id):
            if item_id in pool:
                labels[item_id] = int(np.argmax(probabilities))
                languages[item_id] = pool[item_id]
        predicted.append(labels)
    kappas: dict[str, list[float]] = defaultdict(list)
    for older, newer in pairwise(predicted):
        by_language: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
        for item_id in older.keys() & newer.keys():
            first, second = by_language[languages[item_id]]
            first.append(older[item_id])
            second.append(newer[item_id])
        for language, (first, second) in by_language.items():
            kappa = cohen_kappa(first, second)
            if kappa is not None:
                kappas[language].append(round(kappa, 4))
    all_languages = sorted(set(languages.values()))
    return {
        language: StopSignal(
            language,
            kappas.get(language, []),
            len(kappas.get(language, [])) >= window
            and float(np.mean(kappas[language][-window:])) >= threshold,
        )
        for language in all_languages
    }
