"""The study's setting, shared by the web side's simulation and the worker's experiment: its labelled CSVs
(columns id, text, lang, label; Nasuto et al., arXiv 2508.06435) and its score table over all posts, English and
Spanish (the study's training languages) and the other languages. The language code aliases live here too, so
that `in` (the study's and Twitter's code for Indonesian) becomes ISO `id` the same way everywhere."""

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from core.labels import LABELS
from core.metrics import macro_f1, stance_f1, topic_f1

LANGUAGE_ALIASES: dict[str, str] = {"in": "id", "iw": "he", "ji": "yi", "jw": "jv", "fil": "tl"}
"""Codes seen in corpora that are not (or no longer) ISO 639-1: `in` is Indonesian in the study and on Twitter;
iw/ji/jw are withdrawn codes; `fil` is Twitter's Filipino."""
STUDY_TRAIN = Path("../shared/data/immigration-tweets/train.csv")
STUDY_TEST = Path("../shared/data/immigration-tweets/test.csv")
"""Where the study's labelled tweets sit beside a checkout: the CLI's defaults for `experiment` and `simulate`."""
MAIN_LANGUAGES = frozenset({"en", "es"})
SUBSETS = ("all", "en_es", "others")
"""The study's table: every post, English and Spanish, and the posts in any other language."""


@dataclass(frozen=True)
class StudyPost:
    text: str
    language: str
    label: str


def read_study_csv(path: Path) -> list[StudyPost]:
    """The posts of one of the study's CSVs, languages through LANGUAGE_ALIASES; a label outside the scheme is a
    ValueError naming the line."""
    posts = []
    with path.open(encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            if row["label"] not in LABELS:
                raise ValueError(f"{path}:{line}: label '{row['label']}' is none of {', '.join(LABELS)}")
            language = row["lang"].strip().lower()
            posts.append(StudyPost(row["text"], LANGUAGE_ALIASES.get(language, language), row["label"]))
    return posts


def subset_mask(subset: str, languages: NDArray[np.str_]) -> NDArray[np.bool_]:
    main = np.isin(languages, list(MAIN_LANGUAGES))
    return {"all": np.ones(len(languages), dtype=bool), "en_es": main, "others": ~main}[subset]


def study_scores(
    gold: Sequence[str], predicted: Sequence[str], languages: Sequence[str]
) -> dict[str, dict[str, float | int | None]]:
    """For each of SUBSETS: n, 4-class, topic and stance macro-F1 (None where the subset has no posts, so that a
    missing subset is never drawn or reported as a score of 0)."""
    g = np.array([LABELS.index(x) for x in gold], dtype=np.int64)
    p = np.array([LABELS.index(x) for x in predicted], dtype=np.int64)
    langs = np.array(languages, dtype=np.str_)
    result: dict[str, dict[str, float | int | None]] = {}
    for subset in SUBSETS:
        mask = subset_mask(subset, langs)
        n = int(mask.sum())
        result[subset] = {
            "n": n,
            "four_class": round(macro_f1(g[mask], p[mask], range(len(LABELS))), 4) if n else None,
            "topic": round(topic_f1(g[mask], p[mask]), 4) if n else None,
            "stance": round(stance_f1(g[mask], p[mask]), 4) if n else None,
        }
    return result
