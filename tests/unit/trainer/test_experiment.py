"""The study's table: subsets and layout (the full run is `lingualoop experiment`; figures in docs/)."""

from pathlib import Path

from trainer.config import LoraSettings, ModelSettings, TrainSettings, WorkerSettings
from trainer.experiment import format_table, run_experiment, subset_scores


def test_subsets_follow_the_study() -> None:
    gold = ["pro", "anti", "unrelated", "neutral"]
    predicted = ["pro", "anti", "unrelated", "pro"]
    scores = subset_scores(gold, predicted, ["en", "es", "hu", "hu"])
    assert scores["all"]["n"] == 4 and scores["en+es"]["n"] == 2 and scores["other ten"]["n"] == 2
    assert scores["en+es"]["four_class"] == 1.0
    assert scores["other ten"]["topic"] == 1.0  # hu: related vs unrelated is right, the stance is not


def test_run_on_a_tiny_model(tiny_llama: Path, tmp_path: Path) -> None:
    rows = "id,lang,text,label\n" + "".join(
        f"{i},{lang},post {i} about {label},{label}\n"
        for i, (lang, label) in enumerate(
            [("en", "pro"), ("es", "anti"), ("hu", "neutral"), ("en", "unrelated")] * 4
        )
    )
    (tmp_path / "train.csv").write_text(rows, encoding="utf-8")
    (tmp_path / "test.csv").write_text(rows, encoding="utf-8")
    settings = WorkerSettings(
        data_dir=tmp_path,
        model=ModelSettings(base_model=str(tiny_llama)),
        lora=LoraSettings(r=4, alpha=8),
        train=TrainSettings(epochs=1, batch_size=4),
    )
    out = tmp_path / "results.json"
    results = run_experiment(
        tmp_path / "train.csv", tmp_path / "test.csv", settings, ["en", "multi"], out, lambda message: None
    )
    assert [r["train_posts"] for r in results] == [8, 16] and out.exists()
    table = format_table(results)
    assert table.count("\n") == 1 + 3 * 2 and "| other ten 4 | multi |" in table
