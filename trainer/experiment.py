"""Two protocols with the worker's model. The study's cross-lingual table: train on en, es, en+es and all twelve
languages; evaluate on test.csv; 4-class, topic and stance macro-F1 for all posts, en+es, and the other ten
languages. The "others" protocol (core.crossval): k-fold cross-validation over the other ten languages' posts of
train.csv plus test.csv's, with intervals per language."""

import json
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from core.crossval import Fold, protocol_folds, run_folds
from core.labels import LABELS
from core.progress import Log
from core.study import StudyPost, read_study_csv, study_scores
from trainer.config import WorkerSettings
from trainer.label_tokens import score_texts
from trainer.lora_training import train_adapter
from trainer.modeling import load_model, merged_for_scoring
from trainer.schedule import TrainResult

POOLS: dict[str, set[str] | None] = {"en": {"en"}, "es": {"es"}, "en_es": {"en", "es"}, "multi": None}


TABLE_NAMES = {"all": "all", "en_es": "en+es", "others": "other ten"}
"""The study's names for the subsets of its table (core/study.py)."""


def subset_scores(
    gold: Sequence[str], predicted: Sequence[str], langs: Sequence[str]
) -> dict[str, dict[str, Any]]:
    return {TABLE_NAMES[subset]: scores for subset, scores in study_scores(gold, predicted, langs).items()}


def train_and_score(
    name: str, train: list[StudyPost], test: list[StudyPost], settings: WorkerSettings, log: Log
) -> tuple[TrainResult, NDArray[np.float32]]:
    """A fresh adapter trained on `train` as a retrain trains it (label and language weights), then the
    probabilities of `test`."""
    loaded = load_model(
        settings.model,
        settings.lora,
        settings.models_dir,
        max_post_tokens=settings.train.max_post_tokens,
        seed=settings.train.seed,
        log=log,
    )
    every = max(1, round(len(train) * settings.train.epochs / settings.train.batch_size / 10))
    result = train_adapter(
        loaded,
        [r.text for r in train],
        [LABELS.index(r.label) for r in train],
        settings.train,
        on_step=lambda step, total, loss: (
            log(f"  {name}: step {step}/{total}, loss {loss:.3f}")
            if step % every == 0 or step == total
            else None
        ),
        languages=[r.language for r in train],
    )
    scorer = merged_for_scoring(loaded)
    return result, score_texts(scorer, [r.text for r in test], settings.model.score_batch_size)


def encoder_train_and_score(
    name: str, train: list[StudyPost], test: list[StudyPost], settings: WorkerSettings, log: Log
) -> tuple[TrainResult, NDArray[np.float32]]:
    """A fresh encoder (trainer/encoder.py) fine-tuned on `train` as an encoder retrain does, then the
    probabilities of `test`."""
    from trainer.encoder import members_probabilities, train_members

    every = max(1, round(len(train) * settings.encoder.epochs / settings.encoder.batch_size / 10))

    def members_note(member: int) -> str:
        return f", member {member + 1}/{settings.encoder.members}" if settings.encoder.members > 1 else ""

    members, result = train_members(
        settings.encoder,
        [r.text for r in train],
        [LABELS.index(r.label) for r in train],
        [r.language for r in train],
        on_step=lambda member, step, total, loss: (
            log(f"  {name}{members_note(member)}: step {step}/{total}, loss {loss:.3f}")
            if step % every == 0 or step == total
            else None
        ),
    )
    return result, members_probabilities(members, [r.text for r in test])


TRAINERS = {"lora": train_and_score, "encoder": encoder_train_and_score}
"""The worker's backends, each as: train a fresh model on posts, give the probabilities of others."""


def run_protocol(
    train: list[StudyPost],
    test: list[StudyPost],
    settings: WorkerSettings,
    folds: int,
    log: Log,
    backend: str = "lora",
    protocol: str = "others",
    languages: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The "others" or leave-one-language-out protocol (core.crossval) with one of the worker's backends: a fresh
    model per fold."""
    train_and_predict = TRAINERS[backend]
    splits = protocol_folds(protocol, train, test, folds, settings.train.seed, languages)

    def predict(fold: Fold) -> NDArray[np.float32]:
        left_out = f" (without {fold.evaluate[0].language})" if protocol == "lolo" else ""
        log(f"fold {fold.index + 1}/{len(splits)}: training on {len(fold.train):,} posts{left_out}")
        result, probabilities = train_and_predict(
            f"fold {fold.index + 1}", fold.train, fold.evaluate, settings, log
        )
        log(f"  fold {fold.index + 1}: {result.steps} steps in {result.seconds:.0f} s")
        return probabilities

    started = time.perf_counter()
    report = run_folds(splits, predict)
    return report | {"backend": backend, "seconds": round(time.perf_counter() - started, 1)}


def run_pool(
    name: str, train: list[StudyPost], test: list[StudyPost], settings: WorkerSettings, log: Log
) -> dict[str, Any]:
    languages = POOLS[name]
    chosen = [r for r in train if languages is None or r.language in languages]
    if settings.train.max_examples is not None:  # a seeded sample: the file is grouped by language
        chosen = random.Random(settings.train.seed).sample(
            chosen, min(len(chosen), settings.train.max_examples)
        )
    started = time.perf_counter()
    result, probabilities = train_and_score(name, chosen, test, settings, log)
    predicted = [LABELS[i] for i in probabilities.argmax(axis=1)]
    scores = subset_scores([r.label for r in test], predicted, [r.language for r in test])
    counts = {label: predicted.count(label) for label in LABELS}
    log(f"  {name}: trained on {len(chosen)} posts in {result.seconds:.0f} s; predicted {counts}")
    return {
        "pool": name,
        "train_posts": len(chosen),
        "steps": result.steps,
        "seconds": round(time.perf_counter() - started, 1),
        "predicted": counts,
        "scores": scores,
    }


def format_table(results: list[dict[str, Any]]) -> str:
    lines = ["| pool | model | 4-class | topic | stance |", "| --- | --- | ---: | ---: | ---: |"]
    for subset in TABLE_NAMES.values():
        for result in results:
            s = result["scores"][subset]
            cells = " | ".join(
                "no posts" if s[k] is None else f"{s[k]:.3f}" for k in ("four_class", "topic", "stance")
            )
            lines.append(f"| {subset} {s['n']} | {result['pool']} | {cells} |")
    return "\n".join(lines)


def run_experiment(
    train_path: Path,
    test_path: Path,
    settings: WorkerSettings,
    pools: Sequence[str],
    out: Path | None,
    log: Log,
) -> list[dict[str, Any]]:
    train, test = read_study_csv(train_path), read_study_csv(test_path)
    results = []
    for name in pools:
        if name not in POOLS:
            raise ValueError(f"unknown pool '{name}': use {', '.join(POOLS)}")
        log(f"training on {name} ...")
        results.append(run_pool(name, train, test, settings, log))
        if out is not None:
            out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    log(format_table(results))
    return results
