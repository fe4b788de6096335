"""Benchmark: a warm encoder round against a full one, on the shared corpus.

A project of train.csv's 2,625 labels, of which 100 (of the ten other languages, drawn with seed 33) arrive last:
`base` is the default three-member encoder trained from e5 on the other 2,525; the warm round resumes its members
on the 100 new labels plus a replay sample (trainer.encoder.resume_members, as a Retrain does); `full` is trained
from e5 on all 2,625. The three are scored on test.csv; the table gives 4-class, topic and stance macro-F1 on all
posts and on the ten other languages with 95% bootstrap intervals, and the warm round minus the full one, paired
over the same posts.

    python -m bench.encoder_rounds                      # trains base and full first: about an hour on 2 cores
    python -m bench.encoder_rounds --base DIR --full DIR  # saved members (trainer.encoder.save_members)

Training runs on torch's threads (all cores); the timings are the warm round's training alone, then its scoring
of test.csv. The LoRA-style drift over many rounds in a row (`--rounds N`: N x 100 labels arrive, one round each,
against a full round at the same labels) takes N warm rounds and a base at 2,625 - N x 100 labels; beyond seven
rounds the arriving labels are drawn from every language.

`--protocol others` asks the same of the experiment's "others" protocol (core.crossval: 5 folds, seed 0, 1,000
posts of the ten other languages, each predicted once by a model that never saw it): in each fold 100 of its
training set's other-language posts (seed 33 + fold) arrive last; base is trained on the rest, the warm round
resumes it, full is trained on the whole fold. `--members 1` trains one member instead of the default three (a
third of the time: about 18 minutes a fold on 2 cores); each fold's members are saved and loaded again on a rerun.

    python -m bench.encoder_rounds --protocol others --members 1   # about 90 minutes on 2 cores

`--timing` times the warm round alone, with the default three members as e5 builds them (a round's time does not
depend on its weights' values), on train.csv's 100 arriving posts plus the replay sample, once with each of the
settings given and once with the defaults, alternately, `--repeats` times: no quality, minutes instead of an hour.

    python -m bench.encoder_rounds --timing --warm-epochs 4 --warm-bf16
"""

import argparse
import random
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import SHARED
from core.crossval import others_folds, paired_difference, with_intervals
from core.labels import LABELS
from core.study import MAIN_LANGUAGES, StudyPost, read_study_csv
from trainer.config import EncoderSettings
from trainer.encoder import (
    LoadedEncoder,
    load_members,
    members_probabilities,
    native_bf16,
    new_encoder,
    resume_members,
    save_members,
    share_frozen,
    train_members,
)

WORK = Path("lingualoop-data/bench/encoder-rounds")
ARRIVING = 100
"""Labels per warm round."""


def arrivals(posts: Sequence[StudyPost], rounds: int) -> list[list[int]]:
    """`rounds` groups of ARRIVING post indices of the ten other languages (seed 33), the order they arrive in;
    of every language when the ten others have too few posts (train.csv has 750: more than seven rounds)."""
    others = [i for i, p in enumerate(posts) if p.language not in ("en", "es")]
    if ARRIVING * rounds > len(others):
        others = list(range(len(posts)))
    drawn = random.Random(33).sample(others, ARRIVING * rounds)
    return [drawn[r * ARRIVING : (r + 1) * ARRIVING] for r in range(rounds)]


def trained(
    posts: Sequence[StudyPost],
    indices: Sequence[int],
    folder: Path | None,
    name: str,
    settings: EncoderSettings | None = None,
) -> list[LoadedEncoder]:
    """The default encoder (or `settings`') from e5 on `indices`, loaded from `folder` when given, else trained
    and saved."""
    if folder is not None:
        return load_members(folder)
    chosen = [posts[i] for i in indices]
    started = time.perf_counter()
    members, _ = train_members(
        settings or EncoderSettings(),
        [p.text for p in chosen],
        [LABELS.index(p.label) for p in chosen],
        [p.language for p in chosen],
    )
    save_members(members, WORK / name, {"labels": len(chosen)})
    print(
        f"{name}: trained from e5 on {len(chosen):,} labels in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return members


def warm_round(
    members: list[LoadedEncoder],
    posts: Sequence[StudyPost],
    new: Sequence[int],
    earlier: Sequence[int],
    seed: int,
    settings: EncoderSettings | None = None,
) -> float:
    """Resume `members` in place on `new` plus the replay sample of `earlier` a Retrain would draw; seconds."""
    settings = settings or EncoderSettings()
    replay = random.Random(seed).sample(
        list(earlier), min(len(earlier), round(settings.replay_ratio * len(new)))
    )
    chosen = [posts[i] for i in [*new, *replay]]
    started = time.perf_counter()
    result = resume_members(
        members,
        settings,
        [p.text for p in chosen],
        [LABELS.index(p.label) for p in chosen],
        [p.language for p in chosen],
    )
    seconds = time.perf_counter() - started
    print(
        f"warm round: {len(new)} new + {len(replay)} replayed, {result.steps} steps over {len(members)} members "
        f"in {seconds:.0f} s",
        flush=True,
    )
    return seconds


def predicted(members: list[LoadedEncoder], test: Sequence[StudyPost]) -> list[str]:
    started = time.perf_counter()
    probabilities = members_probabilities(members, [p.text for p in test])
    print(f"  scored {len(test)} posts in {time.perf_counter() - started:.0f} s", flush=True)
    return [LABELS[i] for i in probabilities.argmax(axis=1)]


METRICS = ("four_class", "topic", "stance")


def interval_cells(found: dict[str, Any]) -> str:
    """with_intervals' three metrics as 'value [low, high]'."""
    return " ".join(
        f"{found[m]:.3f} [{found[m + '_ci95'][0]:.3f}, {found[m + '_ci95'][1]:.3f}]" for m in METRICS
    )


def paired_cells(diff: dict[str, dict[str, Any]]) -> str:
    """paired_difference's three metrics as 'difference [low, high]'."""
    return " ".join(
        f"{diff[m]['difference']:+.3f} [{diff[m]['ci95'][0]:+.3f}, {diff[m]['ci95'][1]:+.3f}]"
        for m in METRICS
    )


def table(test: Sequence[StudyPost], runs: dict[str, list[str]]) -> None:
    gold = np.array([LABELS.index(p.label) for p in test], dtype=np.int64)
    others = np.array([p.language not in ("en", "es") for p in test])
    print(f"\n{'version':<28} {'posts':<12} {'4-class':>22} {'topic':>22} {'stance':>22}")
    for name, labels in runs.items():
        guess = np.array([LABELS.index(x) for x in labels], dtype=np.int64)
        for subset, mask in (("all", np.ones(len(test), dtype=bool)), ("ten others", others)):
            found = with_intervals(gold[mask], guess[mask], 1000, 0)
            cells = interval_cells(found)
            print(f"{name:<28} {subset:<12} {cells}")
    if "full" in runs:
        gold_labels = [p.label for p in test]
        for name in runs:
            if name in ("full", "base"):
                continue
            for subset, mask in (("all", np.ones(len(test), dtype=bool)), ("ten others", others)):
                keep = np.flatnonzero(mask)
                diff = paired_difference(
                    [gold_labels[i] for i in keep],
                    [runs["full"][i] for i in keep],
                    [runs[name][i] for i in keep],
                )
                cells = paired_cells(diff)
                print(f"{name + ' - full':<28} {subset:<12} {cells}")


def timing(warm: dict[str, float | bool], repeats: int) -> None:
    """Seconds of a warm round with the default settings and with `warm`, alternately, three fresh members each."""
    posts = read_study_csv(SHARED / "train.csv")
    new = arrivals(posts, 1)[0]
    earlier = [i for i in range(len(posts)) if i not in set(new)]
    arms = {"defaults": EncoderSettings(), "with " + describe(warm): replace(EncoderSettings(), **warm)}  # type: ignore[arg-type]
    seconds: dict[str, list[float]] = {name: [] for name in arms}
    for repeat in range(repeats):
        for name, settings in arms.items():
            members = [
                new_encoder(replace(settings, seed=settings.seed + k)) for k in range(settings.members)
            ]
            share_frozen(members)
            print(f"{name}, repeat {repeat + 1}:", end=" ", flush=True)
            seconds[name].append(warm_round(members, posts, new, earlier, 0, settings))
    for name, found in seconds.items():
        print(f"{name}: warm round of three members in {', '.join(f'{s:.0f}' for s in found)} s")


def describe(warm: dict[str, float | bool]) -> str:
    return ", ".join(f"{name}={value}" for name, value in warm.items()) or "the defaults"


def others_protocol(members: int, warm: dict[str, float | bool]) -> None:
    """Warm round against full retrain under the others protocol; prints the pooled table and each fold's times."""
    settings = replace(EncoderSettings(), members=members)
    warm_settings = replace(settings, **warm)  # type: ignore[arg-type]
    print(
        f"warm round: learning rate {warm_settings.warm_learning_rate:g}, epochs {warm_settings.warm_epochs:g}, "
        f"head x{warm_settings.warm_head_lr_factor:g}, replay {warm_settings.replay_ratio:g}"
        + (", bfloat16" if warm_settings.warm_bf16 and native_bf16() else "")
    )
    folds = others_folds(read_study_csv(SHARED / "train.csv"), read_study_csv(SHARED / "test.csv"), 5, 0)
    pooled: list[StudyPost] = []
    runs: dict[str, list[str]] = {"base": [], "warm round": [], "full": []}
    seconds = []
    for fold in folds:
        posts = fold.train
        others = [i for i, p in enumerate(posts) if p.language not in MAIN_LANGUAGES]
        arriving = random.Random(33 + fold.index).sample(others, ARRIVING)
        arrived = set(arriving)
        known = [i for i in range(len(posts)) if i not in arrived]
        print(
            f"fold {fold.index + 1}/5: {len(posts):,} labels, {ARRIVING} arriving; {len(fold.evaluate)} to predict"
        )
        name = f"others-{members}m-fold{fold.index + 1}"
        saved = {arm: WORK / f"{name}-{arm}" for arm in ("base", "full")}
        base = trained(
            posts, known, saved["base"] if saved["base"].exists() else None, saved["base"].name, settings
        )
        runs["base"] += predicted(base, fold.evaluate)
        seconds.append(warm_round(base, posts, arriving, known, seed=fold.index + 1, settings=warm_settings))
        runs["warm round"] += predicted(base, fold.evaluate)
        full_folder = saved["full"] if saved["full"].exists() else None
        runs["full"] += predicted(
            trained(posts, list(range(len(posts))), full_folder, saved["full"].name, settings), fold.evaluate
        )
        pooled += fold.evaluate
    print(f"\nwarm rounds' training, fold by fold: {', '.join(f'{s:.0f} s' for s in seconds)}")
    print(f"others protocol, {members} member(s): {len(pooled)} posts of the ten other languages")
    gold = np.array([LABELS.index(p.label) for p in pooled], dtype=np.int64)
    for name, labels in runs.items():
        found = with_intervals(gold, np.array([LABELS.index(x) for x in labels], dtype=np.int64), 1000, 0)
        print(f"{name:<28} {interval_cells(found)}")
    for name in ("base", "warm round"):
        diff = paired_difference([p.label for p in pooled], runs["full"], runs[name])
        print(f"{name + ' - full (paired)':<28} {paired_cells(diff)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", type=Path, help="saved members trained on all but the arriving labels")
    parser.add_argument("--full", type=Path, help="saved members trained on every label")
    parser.add_argument("--rounds", type=int, default=1, help="warm rounds in a row, 100 labels each")
    parser.add_argument(
        "--protocol", choices=("split", "others"), default="split", help="test.csv, or 5 folds"
    )
    parser.add_argument(
        "--members", type=int, default=EncoderSettings().members, help="members of each version"
    )
    for name in ("warm-learning-rate", "warm-epochs", "warm-head-lr-factor", "replay-ratio"):
        parser.add_argument(f"--{name}", type=float, help="the warm round's, with --protocol others")
    parser.add_argument("--timing", action="store_true", help="time the warm round alone (no quality)")
    parser.add_argument("--repeats", type=int, default=2, help="with --timing")
    parser.add_argument(
        "--warm-bf16",
        action=argparse.BooleanOptionalAction,
        help="the warm round in bfloat16 (or not), with --protocol others",
    )
    args = parser.parse_args()
    if args.protocol == "others" or args.timing:
        warm = {
            name: value
            for name, value in (
                ("warm_learning_rate", args.warm_learning_rate),
                ("warm_epochs", args.warm_epochs),
                ("warm_head_lr_factor", args.warm_head_lr_factor),
                ("replay_ratio", args.replay_ratio),
                ("warm_bf16", args.warm_bf16),
            )
            if value is not None
        }
        if args.timing:
            timing(warm, args.repeats)
        else:
            others_protocol(args.members, warm)
        return
    posts = read_study_csv(SHARED / "train.csv")
    test = read_study_csv(SHARED / "test.csv")
    groups = arrivals(posts, args.rounds)
    arriving = {i for group in groups for i in group}
    known = [i for i in range(len(posts)) if i not in arriving]
    print(
        f"train.csv: {len(posts):,} labels, {len(arriving)} arriving in {args.rounds} round(s); test.csv {len(test)}"
    )
    settings = replace(EncoderSettings(), members=args.members)
    # the default three members keep the names earlier runs saved under
    named = "" if args.members == EncoderSettings().members else f"-{args.members}m-{len(known)}"
    members = trained(posts, known, args.base, f"base{named}", settings)
    runs = {"base": predicted(members, test)}
    seconds = []
    for number, group in enumerate(groups, start=1):
        seconds.append(warm_round(members, posts, group, known, seed=number, settings=settings))
        known += group
        runs[f"warm round {number}"] = predicted(members, test)
    full = trained(
        posts, list(range(len(posts))), args.full, f"full{named and f'-{args.members}m'}", settings
    )
    runs["full"] = predicted(full, test)
    print(f"\nwarm rounds' training: {', '.join(f'{s:.0f} s' for s in seconds)}")
    table(test, runs)


if __name__ == "__main__":
    main()
