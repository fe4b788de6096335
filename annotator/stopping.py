"""A stopping signal per language: when successive model versions agree on almost every pool post of a language,
more labels in that language no longer change the model much (small-text's KappaAverage: the mean Cohen's kappa
between the predictions of successive versions over a window, against a threshold)."""

from collections import defaultdict
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Item, ModelStatus, ModelVersion, Prediction, Project, Split

WINDOW = 3
THRESHOLD = 0.99


def cohen_kappa(first: NDArray[np.int64], second: NDArray[np.int64], classes: int = 4) -> float:
    """Agreement of two label arrays beyond chance; 1.0 when they agree on everything."""
    if len(first) == 0:
        return float("nan")
    observed = float(np.mean(first == second))
    expected = float(sum(np.mean(first == c) * np.mean(second == c) for c in range(classes)))
    return 1.0 if expected == 1.0 else (observed - expected) / (1.0 - expected)


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
    predicted: list[dict[int, int]] = []
    languages: dict[int, str] = {}
    for version_id in versions:
        rows = session.execute(
            select(
                Prediction.item_id,
                Item.language,
                Prediction.p_pro,
                Prediction.p_anti,
                Prediction.p_neutral,
                Prediction.p_unrelated,
            )
            .join(Item, Item.id == Prediction.item_id)
            .where(Prediction.model_version_id == version_id, Item.split == Split.POOL)
        ).all()
        labels = {}
        for item_id, language, *probabilities in rows:
            labels[item_id] = int(np.argmax(probabilities))
            languages[item_id] = language
        predicted.append(labels)
    kappas: dict[str, list[float]] = defaultdict(list)
    for older, newer in pairwise(predicted):
        by_language: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
        for item_id in older.keys() & newer.keys():
            first, second = by_language[languages[item_id]]
            first.append(older[item_id])
            second.append(newer[item_id])
        for language, (first, second) in by_language.items():
            kappas[language].append(round(cohen_kappa(np.array(first), np.array(second)), 4))
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
