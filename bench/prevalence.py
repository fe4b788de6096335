"""Benchmark: do the corrected shares (annotator.reports.quantify) beat counting the model's labels, per language, when
the label shares shift? Prints its figures.

    python -m bench.prevalence [--eval-from test|train] [--samples 200] [--size 100] [--strength 5] [--cache DIR]
    python -m bench.prevalence --run others.json [--lolo lolo.json]

The model is the fast model (multilingual-e5-small embeddings + logistic regression), or the model of a saved
protocol run (`lingualoop experiment --protocol others --out others.json`, any backend, or `--average` of runs).
As in a project, its errors are measured on labelled eval posts that it did not train on and that it scored itself.

- ``--run FILE``: the posts and probabilities of a saved "others" run (train.csv's ten other languages, each post
  scored by a fold's model that trained on the language's other posts) instead of the fast model on test.csv;
  each language's posts are halved as with ``--eval-from test``.
- ``--lolo FILE`` (with ``--run``): a language nobody labelled. The posts to count are drawn from the language's
  posts of a saved leave-one-language-out run of the same model (scored by a model that never saw the language);
  the errors come from the --run file's posts of the *other* languages, as a project's eval split would hold
  labelled languages only. "Per language" then leaves the language raw, and the pooled columns correct it.
- ``--eval-cap N``: each eval split keeps at most N posts of each language (how many eval posts a correction needs).

- ``--eval-from test`` (default): the model trains on all of train.csv; each language's test.csv posts are split in
  two halves at random, the errors are measured on one half and the samples to count are drawn from the other, then
  the halves swap (cross-fitting). This is a project whose eval split is a labelled sample of the corpus it counts.
- ``--eval-from train``: --eval-per-language posts of each language of train.csv are held out as the eval split
  and the model trains on the rest; the samples come from test.csv, a different collection of tweets. This shows
  what happens when the eval split does not come from the corpus that is counted.

The posts to count are drawn from test.csv (or its other half), language by language, with the label shares
deliberately shifted:

- natural   the language's own shares in test.csv
- anti x2   twice the anti share (the others scaled down to make room)
- pro x2    twice the pro share
- random    shares drawn uniformly from the simplex

Each sample has --size posts drawn with replacement from the language's test posts of each label. The figure is
the mean absolute error of the four shares (percentage points), for counting (cc) and each correction, with the
errors measured per language (languages with fewer than 20 eval posts use the pooled errors) and pooled only.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from annotator.reports.quantify import (
    DEFAULT_METHOD,
    METHODS,
    Counted,
    ErrorModel,
    EvalPosts,
    estimate,
    fit_error_model,
    group_shares,
)
from annotator.retraining.fastmodel import embed_texts, predict_proba, train_head
from core.labels import LABELS
from core.study import STUDY_TEST, STUDY_TRAIN, read_study_csv

K = len(LABELS)
SCENARIOS = ("natural", "anti x2", "pro x2", "random")


def target_shares(
    scenario: str, natural: NDArray, present: NDArray, rng: np.random.Generator
) -> NDArray | None:
    if scenario == "natural":
        shares = natural.copy()
    elif scenario in ("anti x2", "pro x2"):
        label = LABELS.index(scenario.split()[0])
        if natural[label] == 0 or natural[label] >= 0.5:
            return None  # nothing to double
        shares = natural * (1 - 2 * natural[label]) / (1 - natural[label])
        shares[label] = 2 * natural[label]
    else:
        shares = np.zeros(K)
        shares[present] = rng.dirichlet(np.ones(int(present.sum())))
    return shares


def draw(
    by_label: list[NDArray], shares: NDArray, size: int, rng: np.random.Generator
) -> tuple[NDArray, NDArray]:
    """Indices of a sample with (about) the given label shares, and its true shares."""
    counts = rng.multinomial(size, shares)
    picks = [rng.choice(by_label[c], counts[c]) for c in range(K) if counts[c]]
    return np.concatenate(picks), counts / size


def keep_per_language(languages: NDArray, n: int, seed: int) -> NDArray:
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(languages == lang))[:n] for lang in np.unique(languages)]
    return np.sort(np.concatenate(keep))


def saved_run(path: Path) -> tuple[NDArray, NDArray, NDArray]:
    """Probabilities, gold labels (indices) and languages of a saved `lingualoop experiment --out` run."""
    report = json.loads(path.read_text(encoding="utf-8"))
    run = report if "posts" in report else next(iter(report.values()))
    posts = run["posts"]
    return (
        np.asarray(posts["probabilities"], dtype=np.float64),
        np.array([LABELS.index(label) for label in posts["gold"]]),
        np.array(posts["languages"]),
    )


def halved(
    probabilities: NDArray, gold: NDArray, languages: NDArray, rng: np.random.Generator
) -> tuple[list[EvalPosts], list[NDArray]]:
    """Each language's posts split in random halves: the two eval splits, and the posts each leaves to count (the
    other half)."""
    half = np.zeros(len(languages), dtype=bool)
    for language in np.unique(languages):
        index = rng.permutation(np.flatnonzero(languages == language))
        half[index[: len(index) // 2]] = True
    eval_sets = [EvalPosts(probabilities[h], gold[h], languages[h]) for h in (half, ~half)]
    return eval_sets, [~half, half]


def capped(evals: EvalPosts, cap: int, rng: np.random.Generator) -> EvalPosts:
    """At most `cap` eval posts of each language, drawn at random (how the correction fares on fewer)."""
    keep = np.sort(
        np.concatenate(
            [
                rng.permutation(np.flatnonzero(evals.languages == lang))[:cap]
                for lang in np.unique(evals.languages)
            ]
        )
    )
    return EvalPosts(evals.probabilities[keep], evals.gold[keep], evals.languages[keep])


Folds = list[tuple[NDArray, dict[str, ErrorModel]]]


def error_models(evals: EvalPosts, args: argparse.Namespace, balanced: bool) -> dict[str, ErrorModel]:
    """The errors each column corrects with: per language (the default's rule), and pooled over all languages."""
    return {
        "per language": fit_error_model(evals, args.min_eval, args.strength, balanced),
        "pooled": fit_error_model(evals, 10**9, balanced=balanced),
    }


def unseen_language_folds(
    counted_lang: NDArray, evals: EvalPosts, args: argparse.Namespace, balanced: bool
) -> dict[str, Folds]:
    """Per language of the leave-one-language-out posts: all its posts to count, and errors measured on the eval
    posts of the other languages only."""
    folds: dict[str, Folds] = {}
    for language in np.unique(counted_lang):
        other = evals.languages != language
        rest = EvalPosts(evals.probabilities[other], evals.gold[other], evals.languages[other])
        folds[str(language)] = [(counted_lang == language, error_models(rest, args, balanced))]
    return folds


def check_coverage(
    folds: list[tuple[NDArray, EvalPosts]],
    test_p: NDArray,
    test_y: NDArray,
    test_lang: NDArray,
    args: argparse.Namespace,
    rng: np.random.Generator,
) -> None:
    """How often the 95% bootstrap interval (100 resamples, eval posts and counted posts redrawn) holds the
    sample's true share, for the languages with their own eval errors."""
    print(
        f"\nCoverage of the 95% intervals ({args.coverage} samples per language and scenario, 100 resamples)"
    )
    for language in sorted(np.unique(test_lang)):
        hits: dict[str, list[bool]] = {"cc": [], DEFAULT_METHOD: []}
        widths: dict[str, list[float]] = {"cc": [], DEFAULT_METHOD: []}
        for pool, evals in folds:
            own = evals.languages == language
            if own.sum() < args.min_eval:
                break
            mask = (test_lang == language) & pool
            by_label = [np.flatnonzero(mask & (test_y == c)) for c in range(K)]
            present = np.array([len(index) > 0 for index in by_label])
            natural = np.array([len(index) for index in by_label]) / mask.sum()
            language_evals = EvalPosts(evals.probabilities[own], evals.gold[own], evals.languages[own])
            for scenario in SCENARIOS:
                for _ in range(max(1, args.coverage // len(folds))):
                    shares = target_shares(scenario, natural, present, rng)
                    if shares is None:
                        break
                    sample, truth = draw(by_label, shares, args.size, rng)
                    counted = Counted(
                        test_p[sample],
                        test_lang[sample],
                        np.zeros(len(sample), dtype=np.int64),
                        [(language,)],
                    )
                    (group,) = group_shares(
                        counted,
                        language_evals,
                        list(hits),
                        resamples=100,
                        min_eval=args.min_eval,
                        seed=int(rng.integers(1 << 30)),
                    )
                    for method in hits:
                        low, high = group.interval(method)
                        hits[method].extend(((low <= truth) & (truth <= high)).tolist())
                        widths[method].append(float(np.mean(high - low)))
        if hits["cc"]:
            print(
                f"{language}: "
                + ", ".join(
                    f"{m} {100 * np.mean(h):.0f}% of shares inside (mean width {100 * np.mean(widths[m]):.1f} points)"
                    for m, h in hits.items()
                )
            )


def fast_model_scores(
    args: argparse.Namespace, rng: np.random.Generator
) -> tuple[NDArray, NDArray, NDArray, list[EvalPosts], list[NDArray]]:
    """The fast model's test.csv probabilities, gold labels and languages, the eval splits and the posts each
    leaves to count (--eval-from)."""
    train, test = read_study_csv(STUDY_TRAIN), read_study_csv(STUDY_TEST)
    started = time.perf_counter()
    vectors = embed_texts([p.text for p in train + test], args.cache)
    print(
        f"embedded {len(vectors):,} posts in {time.perf_counter() - started:.0f} s (cached after the first run)"
    )
    train_x, test_x = vectors[: len(train)], vectors[len(train) :]
    train_y = np.array([LABELS.index(p.label) for p in train])
    test_y = np.array([LABELS.index(p.label) for p in test])
    train_lang = np.array([p.language for p in train])
    test_lang = np.array([p.language for p in test])
    if args.eval_from == "train":
        held = keep_per_language(train_lang, args.eval_per_language, args.seed)
        fit = np.setdiff1d(np.arange(len(train)), held)
        head = train_head(train_x[fit], train_y[fit].tolist())
        test_p = predict_proba(head, test_x).astype(np.float64)
        eval_sets = [
            EvalPosts(predict_proba(head, train_x[held]).astype(np.float64), train_y[held], train_lang[held])
        ]
        print(f"trained on {len(fit):,} train posts; eval: {len(held):,} held-out train posts")
        return test_p, test_y, test_lang, eval_sets, [np.ones(len(test), dtype=bool)]
    head = train_head(train_x, train_y.tolist())
    test_p = predict_proba(head, test_x).astype(np.float64)
    print(
        f"trained on {len(train):,} train posts; eval: one half of test.csv per language, samples: the other"
    )
    return test_p, test_y, test_lang, *halved(test_p, test_y, test_lang, rng)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=200, help="samples per language and scenario")
    parser.add_argument("--size", type=int, default=100, help="posts per sample")
    parser.add_argument("--eval-from", choices=("test", "train"), default="test")
    parser.add_argument("--eval-per-language", type=int, default=30, help="with --eval-from train")
    parser.add_argument(
        "--strength", type=float, default=5.0, help="pseudo-posts pulling a language to the pool"
    )
    parser.add_argument("--min-eval", type=int, default=20)
    parser.add_argument("--cache", type=Path, default=Path("lingualoop-data/embeddings"))
    parser.add_argument(
        "--pooling",
        choices=("balanced", "posts"),
        default="posts",
        help="pooled errors: every language weighing the same, or every post",
    )
    parser.add_argument(
        "--coverage",
        type=int,
        default=0,
        help="also check the 95%% intervals on N samples per language and scenario",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--eval-cap", type=int, default=0, help="keep at most N eval posts per language (0: all)"
    )
    parser.add_argument("--run", type=Path, help="a saved others-protocol run instead of the fast model")
    parser.add_argument("--lolo", type=Path, help="with --run: a saved leave-one-language-out run to count")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    balanced = args.pooling == "balanced"
    started = time.perf_counter()
    if args.lolo is not None and args.run is None:
        parser.error("--lolo needs --run: the errors come from a run that trained on the other languages")
    if args.run is not None:
        test_p, test_y, test_lang = saved_run(args.run)
        print(
            f"{args.run}: {len(test_y):,} posts of {len(np.unique(test_lang))} languages, scored out of fold"
        )
        eval_sets, pools = halved(test_p, test_y, test_lang, rng)
    else:
        test_p, test_y, test_lang, eval_sets, pools = fast_model_scores(args, rng)
    if args.eval_cap:
        eval_sets = [capped(evals, args.eval_cap, rng) for evals in eval_sets]
    folds = [
        (pool, error_models(evals, args, balanced)) for pool, evals in zip(pools, eval_sets, strict=True)
    ]
    folds_by_language = {str(language): folds for language in np.unique(test_lang)}
    if args.lolo is not None:
        run_evals = EvalPosts(test_p, test_y, test_lang)
        test_p, test_y, test_lang = saved_run(args.lolo)
        folds_by_language = unseen_language_folds(test_lang, run_evals, args, balanced)
        print(
            f"{args.lolo}: counting {len(test_y):,} posts of languages the model never saw; errors from the other "
            "languages of the run"
        )
    folds_evals = list(zip(pools, eval_sets, strict=True))
    eval_counts = {} if args.lolo is not None else folds[0][1]["per language"].eval_posts
    print(
        f"eval posts per language (first fold): {', '.join(f'{lang} {n}' for lang, n in eval_counts.items())}"
    )

    errors: dict[tuple[str, str, str, str], list[float]] = {}  # (errors, method, language, scenario) -> MAE
    for language in sorted(np.unique(test_lang)):
        for pool, models in folds_by_language[str(language)]:
            mask = (test_lang == language) & pool
            by_label = [np.flatnonzero(mask & (test_y == c)) for c in range(K)]
            present = np.array([len(index) > 0 for index in by_label])
            natural = np.array([len(index) for index in by_label]) / mask.sum()
            for scenario in SCENARIOS:
                for _ in range(args.samples // len(folds)):
                    shares = target_shares(scenario, natural, present, rng)
                    if shares is None:
                        break
                    sample, truth = draw(by_label, shares, args.size, rng)
                    for source, model in models.items():
                        own = str(language) in model.by_language
                        for method in METHODS:
                            if method == "cc" and source == "pooled":
                                continue
                            # "per language": the default fallback, a language with too few eval posts left raw;
                            # "pooled": every language corrected with the errors pooled over all languages.
                            used = method if own or source == "pooled" else "cc"
                            estimated = estimate(used, test_p[sample], model.errors_for(str(language)))
                            key = (source, method, str(language), scenario)
                            errors.setdefault(key, []).append(float(np.abs(estimated - truth).mean()))

    if args.coverage and args.lolo is None:
        check_coverage(folds_evals, test_p, test_y, test_lang, args, rng)
    columns = [("per language", m) for m in METHODS] + [("pooled", m) for m in METHODS if m != "cc"]
    header = ["language", "eval"] + [m if s == "per language" else f"{m}*" for s, m in columns]
    print(
        f"\nMean absolute error of the four shares, percentage points ({args.samples} samples of {args.size} "
        f"posts per language and scenario; a language with under --min-eval eval posts is left raw, * = every language corrected with the pooled errors instead; best per row in brackets)"
    )
    for scenario in (*SCENARIOS, "all"):
        print(f"\n{scenario}")
        print(" | ".join(f"{h:>8}" for h in header))
        languages = sorted({key[2] for key in errors})
        totals: dict[tuple[str, str], list[float]] = {}
        for language in [*languages, "mean"]:
            values = []
            for source, method in columns:
                if language == "mean":
                    value = float(np.nanmean(totals[(source, method)]))
                else:
                    picked = [
                        v for (s, m, lang, sc), vs in errors.items() for v in vs
                        if (s, m, lang) == (source, method, language) and scenario in (sc, "all")
                    ]  # fmt: skip
                    value = float(np.mean(picked)) if picked else float("nan")
                    totals.setdefault((source, method), []).append(value)
                values.append(100 * value)
            if np.isnan(values).all():
                continue  # the scenario does not apply to this language
            best = int(np.nanargmin(values))
            eval_n = "" if language == "mean" else str(eval_counts.get(language, 0))
            cells = [f"[{v:.1f}]" if i == best else f"{v:.1f}" for i, v in enumerate(values)]
            print(" | ".join(f"{c:>8}" for c in [language, eval_n, *cells]))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
