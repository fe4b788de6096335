"""Simulated annotation: replay labelling with gold labels as the oracle, evaluate after every batch, and write
learning curves. The fast model stands in for the retrained model; the sampler's own strategies and quotas
choose each batch, so a simulation measures the code that serves real annotators."""

import csv
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from annotator.retraining.fastmodel import predict_proba, train_head
from annotator.sampling.sampler import LanguageState, catch_up_quotas, language_quotas
from annotator.sampling.settings import SamplingSettings
from annotator.sampling.strategies import uncertainty
from core.crossval import Fold
from core.labels import LABELS
from core.metrics import macro_f1
from core.study import SUBSETS, StudyPost, study_scores
from core.weighting import DEFAULT_LANGUAGE_POWER

UNRELATED = LABELS.index("unrelated")
SUBSET_TITLES = {"all": "all posts", "en_es": "en+es", "others": "other languages (not en, es)"}


@dataclass(frozen=True)
class Post:
    lang: str
    text: str
    label: int


@dataclass(frozen=True)
class SimulationConfig:
    strategy: str = SamplingSettings.strategy
    quotas: bool = True
    """Language-aware quotas; False: one language-blind ranking over the whole pool."""
    budget: int = 1000
    batch: int = 40
    random_share: float = SamplingSettings.random_share
    ceiling_share: float = SamplingSettings.ceiling_share
    catch_up: int = 0
    """With quotas: >0 gives quotas only to languages with fewer labels than this (`catch_up_quotas`), the rest
    of each batch to the language-blind ranking; 0 weighs every language in every batch (`language_quotas`)."""
    catch_up_share: float = SamplingSettings.catch_up_share
    """The most of a batch that catch-up quotas may take."""
    language_power: float = DEFAULT_LANGUAGE_POWER
    """The fast head's language weights (core.weighting), as a fast retrain trains it; 0 weighs by label only."""

    @property
    def name(self) -> str:
        if not self.quotas:
            return self.strategy
        share = f"x{self.catch_up_share:g}" if self.catch_up_share != 0.5 else ""
        rand = f"-random{self.random_share:g}" if self.random_share != SamplingSettings.random_share else ""
        return f"{self.strategy}+quotas" + (f"-catchup{self.catch_up}{share}" if self.catch_up else "") + rand


def from_study(post: StudyPost) -> Post:
    return Post(post.language, post.text, LABELS.index(post.label))


def scores(
    gold: NDArray[np.int64], predicted: NDArray[np.int64], langs: NDArray[np.str_]
) -> dict[str, float | None]:
    """4-class, topic and stance macro-F1 for all posts, en+es, and the other languages (the study's table,
    core/study.py); None for a subset without posts."""
    table = study_scores([LABELS[i] for i in gold], [LABELS[i] for i in predicted], [str(x) for x in langs])
    kinds = {"4class": "four_class", "topic": "topic", "stance": "stance"}
    return {
        f"{subset}_{kind}": None if table[subset][key] is None else float(table[subset][key] or 0.0)
        for subset in SUBSETS
        for kind, key in kinds.items()
    }


def per_language_f1(
    gold: NDArray[np.int64], predicted: NDArray[np.int64], langs: NDArray[np.str_]
) -> dict[str, float]:
    return {
        lang: macro_f1(gold[langs == lang], predicted[langs == lang], range(4)) for lang in np.unique(langs)
    }


def replay(
    pool: Sequence[Post],
    held: Sequence[Post],
    pool_x: NDArray[np.float32],
    held_x: NDArray[np.float32],
    config: SimulationConfig,
    seed: int,
) -> Iterator[tuple[int, NDArray[np.int64]]]:
    """One annotation run on `pool`: a cold-start batch stratified by language, then batches chosen by the sampler
    until the budget. After every batch it yields the labels so far and the model's labels for the `held` posts,
    whose per-language F1 plays the eval split's role in the quotas."""
    rng = np.random.default_rng(seed)
    langs = np.array([p.lang for p in pool])
    gold = np.array([p.label for p in pool], dtype=np.int64)
    held_gold = np.array([p.label for p in held], dtype=np.int64)
    held_langs = np.array([p.lang for p in held])
    ids = np.arange(len(pool), dtype=np.int64)
    labelled = np.zeros(len(pool), dtype=bool)
    cold = Candidates(ids, langs, None)
    states = {lang: LanguageState(int((langs == lang).sum()), 0, None) for lang in np.unique(langs)}
    first = choose(cold, language_quotas(states, config.batch), config.strategy, 0.0, seed)
    labelled[[i for i, _ in first]] = True
    while True:
        model = train_head(
            pool_x[labelled],
            gold[labelled].tolist(),
            seed,
            languages=langs[labelled].tolist(),
            language_power=config.language_power,
        )
        predicted = predict_proba(model, held_x).argmax(axis=1)
        yield int(labelled.sum()), predicted
        if labelled.sum() >= config.budget or labelled.all():
            return
        n = min(config.batch, config.budget - int(labelled.sum()))
        unlabelled = ids[~labelled]
        probabilities = predict_proba(model, pool_x[unlabelled])
        if config.quotas:
            f1 = per_language_f1(held_gold, predicted, held_langs)
            counts = {lang: int((labelled & (langs == lang)).sum()) for lang in np.unique(langs)}
            states = {
                lang: LanguageState(int((langs[unlabelled] == lang).sum()), counts[lang], f1.get(lang))
                for lang in np.unique(langs[unlabelled])
            }
            candidates = Candidates(unlabelled, langs[unlabelled], probabilities)
            if config.catch_up:
                quotas = catch_up_quotas(
                    states,
                    n,
                    target=config.catch_up,
                    max_share=config.catch_up_share,
                    ceiling_share=config.ceiling_share,
                )
                chosen = choose(
                    candidates, quotas, config.strategy, config.random_share, int(rng.integers(1 << 30))
                )
                labelled[[i for i, _ in chosen]] = True
                n -= len(chosen)
                unlabelled = ids[~labelled]
                candidates = Candidates(
                    unlabelled, np.full(len(unlabelled), "any"), predict_proba(model, pool_x[unlabelled])
                )
                quotas = {"any": n}
            else:
                quotas = language_quotas(states, n, ceiling_share=config.ceiling_share)
        else:
            candidates = Candidates(unlabelled, np.full(len(unlabelled), "any"), probabilities)
            quotas = {"any": n}
        chosen = choose(candidates, quotas, config.strategy, config.random_share, int(rng.integers(1 << 30)))
        labelled[[i for i, _ in chosen]] = True


def run_simulation(
    train: Sequence[Post],
    test: Sequence[Post],
    train_x: NDArray[np.float32],
    test_x: NDArray[np.float32],
    config: SimulationConfig,
    seed: int,
) -> list[dict[str, Any]]:
    """One seed on `train`, evaluated on `test` after every batch."""
    test_gold = np.array([p.label for p in test], dtype=np.int64)
    test_langs = np.array([p.lang for p in test])
    return [
        {"strategy": config.name, "seed": seed, "labels": n, **scores(test_gold, predicted, test_langs)}
        for n, predicted in replay(train, test, train_x, test_x, config, seed)
    ]


@dataclass(frozen=True)
class SimulationFold:
    """One fold of the "others" protocol (core.crossval): the pool to annotate and the held-out posts."""

    pool: list[Post]
    held: list[Post]
    pool_x: NDArray[np.float32]
    held_x: NDArray[np.float32]


def simulation_folds(
    folds: Sequence[Fold], vectors: Mapping[str, NDArray[np.float32]]
) -> list[SimulationFold]:
    """The protocol's folds (core.crossval.others_folds) with each post's embedding, looked up by its text."""

    def stack(posts: Sequence[StudyPost]) -> NDArray[np.float32]:
        return np.stack([vectors[p.text] for p in posts]).astype(np.float32)

    return [
        SimulationFold(
            [from_study(p) for p in fold.train],
            [from_study(p) for p in fold.evaluate],
            stack(fold.train),
            stack(fold.evaluate),
        )
        for fold in folds
    ]


def run_protocol_simulation(
    folds: Sequence[SimulationFold], config: SimulationConfig, seed: int
) -> list[dict[str, Any]]:
    """One seed replayed on every fold's pool; at each label count the folds' predictions for their held-out
    posts are pooled, so every held-out post is scored once by a run that never saw it."""
    predicted: dict[int, list[NDArray[np.int64]]] = {}
    for index, fold in enumerate(folds):
        for n, labels in replay(fold.pool, fold.held, fold.pool_x, fold.held_x, config, seed * 1000 + index):
            predicted.setdefault(n, []).append(labels)
    gold = np.array([p.label for fold in folds for p in fold.held], dtype=np.int64)
    langs = np.array([p.lang for fold in folds for p in fold.held])
    return [
        {"strategy": config.name, "seed": seed, "labels": n, **scores(gold, np.concatenate(parts), langs)}
        for n, parts in sorted(predicted.items())
        if len(parts) == len(folds)  # a fold whose pool ran out before the budget stops the pooled curve
    ]


def simulate(
    train: Sequence[Post],
    test: Sequence[Post],
    train_x: NDArray[np.float32],
    test_x: NDArray[np.float32],
    configs: Sequence[SimulationConfig],
    seeds: Sequence[int],
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Every configuration and seed annotating `train`, evaluated on `test`."""
    return _every_run(
        configs, seeds, lambda config, seed: run_simulation(train, test, train_x, test_x, config, seed), log
    )


def simulate_protocol(
    folds: Sequence[SimulationFold],
    configs: Sequence[SimulationConfig],
    seeds: Sequence[int],
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Every configuration and seed under the "others" protocol (`run_protocol_simulation`)."""
    return _every_run(configs, seeds, lambda config, seed: run_protocol_simulation(folds, config, seed), log)


def _every_run(
    configs: Sequence[SimulationConfig],
    seeds: Sequence[int],
    run: Callable[[SimulationConfig, int], list[dict[str, Any]]],
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for config in configs:
        for seed in seeds:
            curve = run(config, seed)
            log(
                f"{config.name} seed {seed}: 4-class F1 {curve[-1]['all_4class']:.3f} at {curve[-1]['labels']} labels"
            )
            rows += curve
    return rows


def mean_curves(rows: Sequence[dict[str, Any]]) -> dict[str, dict[int, dict[str, float]]]:
    """strategy -> labels -> metric means over seeds."""
    grouped: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for row in rows:
        grouped.setdefault(row["strategy"], {}).setdefault(row["labels"], []).append(row)
    metrics = [k for k in rows[0] if k not in {"strategy", "seed", "labels"}] if rows else []
    return {
        s: {n: {m: _mean([r[m] for r in group]) for m in metrics} for n, group in sorted(by_n.items())}
        for s, by_n in grouped.items()
    }


def _mean(values: Sequence[float | None]) -> float:
    """The mean over seeds; NaN where the subset had no posts."""
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else float("nan")


def value_at(curve: dict[int, dict[str, float]], labels: int, metric: str) -> float:
    """The metric at the largest label count not above `labels`."""
    eligible = [n for n in curve if n <= labels]
    return curve[max(eligible)][metric]


def labels_to_reach(curve: dict[int, dict[str, float]], target: float, metric: str) -> int | None:
    for n, values in sorted(curve.items()):
        if values[metric] >= target:
            return n
    return None


def write_outputs(
    rows: Sequence[dict[str, Any]], out_dir: Path, subsets: Sequence[str] = SUBSETS
) -> list[Path]:
    """curves.csv (every seed), curves.png (means: 4-class, topic, stance, one column per subset: all / en+es /
    other languages; a panel whose subset has no posts in the evaluation file says so instead of drawing zeros)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "curves.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    curves = mean_curves(rows)
    figure, axes = plt.subplots(
        3, len(subsets), figsize=(max(7.0, 4.7 * len(subsets)), 11), sharex=True, squeeze=False
    )
    for i, kind in enumerate(("4class", "topic", "stance")):
        for j, subset in enumerate(subsets):
            axis = axes[i][j]
            axis.set_title(f"{kind} macro-F1, {SUBSET_TITLES[subset]}")
            metric = f"{subset}_{kind}"
            if all(np.isnan(values[metric]) for curve in curves.values() for values in curve.values()):
                axis.text(0.5, 0.5, "no posts in the evaluation file", ha="center", va="center")
                continue
            for strategy, curve in curves.items():
                xs = list(curve)
                axis.plot(xs, [curve[x][metric] for x in xs], label=strategy)
            axis.grid(alpha=0.3)
    for axis in axes[-1]:
        axis.set_xlabel("labels")
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    png_path = out_dir / "curves.png"
    figure.savefig(png_path, dpi=90)
    plt.close(figure)
    return [csv_path, png_path]


def summarise(
    rows: Sequence[dict[str, Any]], budget: int, early: int = 400, scope: str = "all-language"
) -> list[str]:
    """The issue's two questions, answered from the mean curves; `scope` names the posts `all_*` scores (under
    the "others" protocol the held-out posts are all of other languages)."""
    curves = mean_curves(rows)
    lines: list[str] = []
    if "random.v1" in curves:
        target = value_at(curves["random.v1"], budget, "all_4class")
        lines.append(f"random.v1: 4-class macro-F1 {target:.3f} at {budget} labels")
        for name, curve in curves.items():
            if name != "random.v1":
                needed = labels_to_reach(curve, target, "all_4class")
                lines.append(
                    f"  {name}: reaches it with {needed if needed is not None else 'more than ' + str(budget)}"
                    " labels"
                )
    blind = {n: c for n, c in curves.items() if "+quotas" not in n and n != "random.v1"}
    aware = {n: c for n, c in curves.items() if "+quotas" in n}
    if blind and aware:
        best_blind = max(blind, key=lambda n: value_at(blind[n], early, "others_stance"))
        for name, curve in aware.items():
            lines.append(
                f"{name}: other-language stance F1 at {early} labels {value_at(curve, early, 'others_stance'):.3f} "
                f"(best blind, {best_blind}: {value_at(blind[best_blind], early, 'others_stance'):.3f}); "
                f"{scope} 4-class at {budget}: {value_at(curve, budget, 'all_4class'):.3f} "
                f"(best blind: {max(value_at(c, budget, 'all_4class') for c in blind.values()):.3f})"
            )
    return lines


@dataclass(frozen=True)
class Candidates:
    item_ids: NDArray[np.int64]
    languages: NDArray[np.str_]
    probabilities: NDArray[np.float32] | None
    """(len(item_ids), 4) from the current version, or None at cold start."""


def choose(
    candidates: Candidates, quotas: Mapping[str, int], strategy: str, random_share: float, seed: int
) -> list[tuple[int, str]]:
    """(item id, reason) in serving order: per language its most uncertain posts, plus a random share."""
    rng = np.random.default_rng(seed)
    cold = candidates.probabilities is None
    if candidates.probabilities is None:
        scores = rng.random(len(candidates.item_ids))
    else:
        scores = uncertainty(strategy, candidates.probabilities, seed)
    chosen: list[tuple[int, float, str]] = []
    taken = np.zeros(len(candidates.item_ids), dtype=bool)
    for lang, quota in quotas.items():
        idx = np.flatnonzero(candidates.languages == lang)
        n_random = 0 if cold else round(quota * random_share)
        n_ranked = quota - n_random
        ranked = idx[np.argsort(-scores[idx], kind="stable")[:n_ranked]]
        taken[ranked] = True
        rest = idx[~taken[idx]]
        randoms = rng.choice(rest, size=min(n_random, len(rest)), replace=False) if n_random else rest[:0]
        taken[randoms] = True
        reason = "cold start" if cold else "uncertain"
        chosen += [(int(candidates.item_ids[i]), float(scores[i]), reason) for i in ranked]
        chosen += [(int(candidates.item_ids[i]), float(scores[i]), "random") for i in randoms]
    chosen.sort(key=lambda entry: -entry[1])
    return [(item_id, reason) for item_id, _, reason in chosen]
