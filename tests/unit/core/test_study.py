"""The study's CSVs and score table, shared by the simulation and the experiment."""

from pathlib import Path

import pytest

from core.study import read_study_csv, study_scores
from testing.factories import write_csv


def test_the_study_csv_reads_indonesian_as_iso_and_refuses_unknown_labels(tmp_path: Path) -> None:
    rows = [
        {"id": "1", "text": "Imigran", "lang": "in", "label": "pro"},
        {"id": "2", "text": "Border", "lang": "EN", "label": "unrelated"},
    ]
    posts = read_study_csv(write_csv(tmp_path / "s.csv", rows))
    assert [(p.language, p.label) for p in posts] == [("id", "pro"), ("en", "unrelated")]
    with pytest.raises(ValueError, match=r"s2.csv:3: label 'maybe'"):
        read_study_csv(write_csv(tmp_path / "s2.csv", [rows[0], {**rows[1], "label": "maybe"}]))


def test_a_subset_without_posts_has_no_scores_rather_than_zeros() -> None:
    table = study_scores(["pro", "unrelated"], ["pro", "pro"], ["tr", "ar"])
    assert table["en_es"] == {"n": 0, "four_class": None, "topic": None, "stance": None}
    assert table["others"]["n"] == 2 and table["others"]["stance"] == 1.0
    assert table["all"]["topic"] == table["others"]["topic"]
