"""`lingualoop experiment --protocol others` (and lolo) end to end: the fast model in this process, the LoRA model (a tiny
one) in the worker's process, on a small file in the study's layout."""

import json
import os
import subprocess
from pathlib import Path

from core.labels import LABELS
from tests.app.test_cli_models import LINGUALOOP, run

WORDS = {
    "pro": "welcome refugees who make us stronger",
    "anti": "close the border and stop immigration now",
    "neutral": "parliament debates the asylum law today",
    "unrelated": "the football match ended in a draw",
}


def _study_files(folder: Path) -> tuple[Path, Path]:
    def rows(prefix: str, counts: dict[str, int]) -> str:
        return "id,lang,text,label\n" + "".join(
            f"{prefix}{lang}{i},{lang},{WORDS[LABELS[i % 4]]} ({lang} {prefix} {i}),{LABELS[i % 4]}\n"
            for lang, n in counts.items()
            for i in range(n)
        )

    train, test = folder / "train.csv", folder / "test.csv"
    train.write_text(rows("a", {"en": 12, "es": 8, "hu": 8, "in": 8}), encoding="utf-8")
    test.write_text(rows("b", {"en": 4, "hu": 4, "in": 4}), encoding="utf-8")
    return train, test


def test_fast_model_compares_language_weights_with_intervals(tmp_path: Path) -> None:
    train, test = _study_files(tmp_path)
    url, data, out = f"sqlite:///{tmp_path / 'x.db'}", tmp_path / "data", tmp_path / "fast.json"
    args = [
        "experiment",
        "--protocol",
        "others",
        "--backend",
        "fast",
        "--train",
        str(train),
        "--test",
        str(test),
    ]
    output = run(url, data, *args, "--folds", "2", "--language-power", "0,0.5", "--out", str(out))
    assert "| **other ten** | 24 |" in output and "| id | 12 |" in output  # `in` read as Indonesian
    assert "| against language power 0 |" in output and "| language power 0.5 | " in output
    results = json.loads(out.read_text(encoding="utf-8"))
    assert set(results) == {"0.0", "0.5"} and results["0.5"]["pooled"]["n"] == 24
    averaged = run(url, data, "experiment", "--protocol", "others", "--average", f"{out},{out}")
    assert (
        "| weighted by language: fast + fast |" in averaged and "| **other ten** | 24 |" in averaged
    )  # no training
    assert "| against geometric mean |" in averaged and "| against arithmetic mean |" in averaged
    # Leave one language out: a fold per language, only those asked for.
    lolo = tmp_path / "lolo.json"
    output = run(url, data, *args[:2], "lolo", *args[3:], "--leave-out", "id", "--out", str(lolo))
    assert "| id | 12 |" in output and "| hu |" not in output and "Folds (k=1)" in output
    assert json.loads(lolo.read_text(encoding="utf-8"))["0.5"]["backend"] == "fast"
    assert "no posts in xx" in run(url, data, *args[:2], "lolo", *args[3:], "--leave-out", "xx", ok=False)
    assert "--leave-out names the languages of --protocol lolo" in run(
        url, data, *args, "--leave-out", "id", ok=False
    )
    assert "Cannot average" in run(url, data, "experiment", "--average", str(tmp_path / "no.json"), ok=False)
    assert "runs the others or lolo protocol" in run(url, data, "experiment", "--backend", "fast", ok=False)
    assert "--language-power takes numbers" in run(url, data, *args, "--language-power", "x", ok=False)
    assert "No such file" in run(url, data, *args[:-4], "--train", str(tmp_path / "nope.csv"), ok=False)


def test_lora_protocol_runs_in_the_worker_process(tmp_path: Path, tiny_llama: Path) -> None:
    train, test = _study_files(tmp_path)
    out = tmp_path / "lora.json"
    command = [LINGUALOOP, "--database-url", f"sqlite:///{tmp_path / 'x.db'}", "--data-dir", str(tmp_path)]
    command += ["experiment", "--protocol", "others", "--train", str(train), "--test", str(test)]
    command += ["--folds", "2", "--epochs", "1", "--language-power", "0.5", "--out", str(out)]
    done = subprocess.run(
        command,
        env=os.environ | {"LINGUALOOP_BASE_MODEL": str(tiny_llama)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| LoRA, language power 0.5 |" in done.stdout and "| **other ten** | 24 |" in done.stdout
    assert json.loads(out.read_text(encoding="utf-8"))["0.5"]["folds"]["k"] == 2
