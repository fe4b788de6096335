"""`lingualoop prevalence` end to end: the demo project, a real fast model trained by the worker, the pool and an
export with predictions counted and corrected."""

import csv
from pathlib import Path

from tests.app.test_cli_models import run, worker_once


def test_prevalence_of_the_pool_and_of_an_export(tmp_path: Path, tiny_llama: Path) -> None:
    url, data = f"sqlite:///{tmp_path / 'cli.db'}", tmp_path / "data"
    run(url, data, "demo", "--no-serve")
    assert "no current model version" in run(
        url, data, "prevalence", "--out", str(tmp_path / "x.csv"), ok=False
    )
    run(url, data, "retrain", "--fast")
    assert "fast model version 1 ready" in worker_once(url, data, tiny_llama)
    table = tmp_path / "shares.csv"
    output = run(url, data, "prevalence", "--out", str(table), "--resamples", "20")
    assert (
        "Too few eval posts (under 100)" in output
        and "uncorrected" in output
        and "392 rows written" in output
    )
    rows = list(csv.DictReader(table.open(encoding="utf-8")))
    assert {r["method"] for r in rows} == {"cc", "acc", "pacc", "emq"} and len(
        {r["lang"] for r in rows}
    ) == 14
    for lang in {r["lang"] for r in rows}:
        for method in ("cc", "pacc"):
            shares = [
                float(r["share"])
                for r in rows
                if (r["lang"], r["method"], r["scope"]) == (lang, method, "all")
            ]
            assert abs(sum(shares) - 1) < 1e-3
    exported = tmp_path / "export.csv"
    run(url, data, "export", str(exported), "--with-predictions")
    by_version = tmp_path / "version-1.csv"
    run(url, data, "export", str(by_version), "--version", "1")  # --version implies the predictions
    chosen = list(csv.DictReader(by_version.open(encoding="utf-8")))
    assert {r["model_version"] for r in chosen if r["split"] == "eval"} == {"1"}  # eval posts have them too
    assert "Model version 7 is not a version of this project. Ready versions of project 'demo': 1." in run(
        url, data, "export", str(tmp_path / "v7.csv"), "--version", "7", ok=False
    )
    assert not (tmp_path / "v7.csv").exists()
    output = run(url, data, "prevalence", "--input", str(exported), "--out", str(tmp_path / "e.csv"),
                 "--methods", "cc,pacc", "--resamples", "5")  # fmt: skip
    assert "70 rows of the eval split were left out" in output
    assert "Unknown method median" in run(
        url, data, "prevalence", "--out", str(tmp_path / "y.csv"), "--methods", "median", ok=False
    )
    assert "No post has a column named 'country'" in run(
        url, data, "prevalence", "--out", str(tmp_path / "y.csv"), "--by", "lang,country", ok=False
    )
    assert not (tmp_path / "y.csv").exists()
