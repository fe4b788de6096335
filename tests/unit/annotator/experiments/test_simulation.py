"""Simulations on synthetic clusters: curves, outputs, and the summary of the issue's questions."""

from pathlib import Path

import numpy as np

from annotator.experiments.simulation import (
    Post,
    SimulationConfig,
    SimulationFold,
    run_protocol_simulation,
    simulate,
    simulate_protocol,
    summarise,
    write_outputs,
)


def _data(n: int, seed: int) -> tuple[list[Post], np.ndarray]:
    rng = np.random.default_rng(seed)
    langs = ["en", "es", "hu", "tr"]
    centres = rng.normal(size=(4, 16)) * 3
    posts, features = [], []
    for i in range(n):
        label = int(rng.integers(4))
        lang = langs[i % 4]
        shift = 0.0 if lang in {"en", "es"} else 1.5  # other languages sit a little apart
        posts.append(Post(lang, f"post {i}", label))
        features.append(centres[label] + rng.normal(size=16) * 2 + shift)
    return posts, np.array(features, dtype=np.float32)


def test_simulation_curves_and_outputs(tmp_path: Path) -> None:
    posts, features = _data(600, 0)  # one draw, so train and test share their clusters
    train, train_x, test, test_x = posts[:400], features[:400], posts[400:], features[400:]
    configs = [
        SimulationConfig("random.v1", quotas=False, budget=120, batch=40),
        SimulationConfig("breaking_ties.v1", quotas=False, budget=120, batch=40),
        SimulationConfig("breaking_ties.v1", quotas=True, budget=120, batch=40),
    ]
    rows = simulate(train, test, train_x, test_x, configs, seeds=[0, 1], log=lambda m: None)
    assert len(rows) == 3 * 2 * 3  # 40, 80, 120 labels
    assert {row["labels"] for row in rows} == {40, 80, 120}
    assert all(0.0 <= row["all_4class"] <= 1.0 for row in rows)
    assert max(row["all_4class"] for row in rows if row["labels"] == 120) > 0.6  # learnable clusters
    files = write_outputs(rows, tmp_path / "out")
    assert all(f.exists() and f.stat().st_size > 0 for f in files)
    summary = summarise(rows, budget=120, early=80)
    assert summary[0].startswith("random.v1: 4-class macro-F1")
    assert any("+quotas: other-language stance F1 at 80 labels" in line for line in summary)


def _fold(posts: list[Post], features: np.ndarray, held_out: range) -> SimulationFold:
    """Held-out posts are the other languages' posts in `held_out`; the pool is every other post."""
    held = [i for i in held_out if posts[i].lang not in {"en", "es"}]
    pool = [i for i in range(len(posts)) if i not in set(held)]
    return SimulationFold([posts[i] for i in pool], [posts[i] for i in held], features[pool], features[held])


def test_protocol_pools_every_folds_held_out_posts() -> None:
    posts, features = _data(600, 1)
    folds = [_fold(posts, features, range(0, 300)), _fold(posts, features, range(300, 600))]
    config = SimulationConfig("breaking_ties.v1", quotas=True, catch_up=30, budget=120, batch=40)
    rows = simulate_protocol(folds, [config], seeds=[0], log=lambda m: None)
    assert [row["labels"] for row in rows] == [40, 80, 120]
    for row in rows:  # the held-out posts are all of other languages: they are the whole evaluation
        assert row["en_es_4class"] is None and row["all_4class"] == row["others_4class"]
    assert rows[-1]["others_4class"] > 0.6
    one = run_protocol_simulation(folds[:1], config, seed=0)
    assert one[-1]["others_4class"] != rows[-1]["others_4class"]  # the second fold's posts count too


def test_protocol_curve_stops_where_a_folds_pool_runs_out() -> None:
    posts, features = _data(200, 2)
    small = _fold(posts[:110], features[:110], range(0, 40))  # a pool of 90 posts: it stops at 90 labels
    large = _fold(posts, features, range(100, 200))
    rows = run_protocol_simulation(
        [small, large], SimulationConfig("random.v1", quotas=False, budget=120, batch=40), seed=0
    )
    assert [row["labels"] for row in rows] == [40, 80]
