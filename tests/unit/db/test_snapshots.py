"""A version's training snapshot: read by name, whatever version of lingualoop wrote it, and written by one
helper in the very shape (keys and their order) versions have always stored."""

import json
from dataclasses import dataclass

from sqlalchemy.orm import Session

from db.models import Backend, ModelStatus, ModelVersion
from db.snapshots import TrainingSnapshot, settings_json, snapshot_json
from testing.factories import make_project
from trainer.config import EncoderSettings, LoraSettings, TrainSettings

LORA_ROUND = {
    "labels": {"1": "pro", "2": "anti"},
    "trained_on": 2,
    "new": 1,
    "replayed": 1,
    "eval_posts": 5,
    "job_id": 9,
    "lora": {"r": 16},
    "train": {"seed": 0},
}


def test_the_reader_names_every_key_a_version_records() -> None:
    lora = TrainingSnapshot.of(LORA_ROUND)
    assert lora.labels == {"1": "pro", "2": "anti"} and lora.label_count == 2
    assert (lora.trained_on, lora.new, lora.replayed, lora.eval_posts, lora.job_id) == (2, 1, 1, 5, 9)
    assert lora.without_labels() == {k: v for k, v in LORA_ROUND.items() if k != "labels"}
    ensemble = TrainingSnapshot.of({"members": [3, 4], "labels": {}, "trained_on": 2, "pooling": "geometric"})
    assert ensemble.members == [3, 4] and ensemble.pooling == "geometric" and ensemble.job_id is None


def test_snapshots_without_a_key_read_as_the_readers_always_did() -> None:
    imported = TrainingSnapshot.of({"imported_from": "/adapters/a"})  # an imported adapter records no labels
    assert imported.labels is None and imported.label_count is None and imported.trained_on is None
    assert imported.members == [] and imported.job_id is None
    assert imported.without_labels() == {"imported_from": "/adapters/a"}
    # Ensembles built before the rule was recorded averaged their members.
    assert TrainingSnapshot.of({"members": [1, 2]}).pooling == "arithmetic"
    assert TrainingSnapshot.of(None) == TrainingSnapshot.of({})


def test_the_labels_are_a_copy() -> None:
    raw = {"labels": {"1": "pro"}}
    labels = TrainingSnapshot.of(raw).labels
    assert labels is not None
    labels["2"] = "anti"  # a retrain adds its labels to its parent's: the parent's row must not change
    assert raw == {"labels": {"1": "pro"}}


def test_the_writer_keeps_each_writers_keys_in_their_order() -> None:
    lora = snapshot_json(
        labels=LORA_ROUND["labels"],
        trained_on=2,
        new=1,
        replayed=1,
        eval_posts=5,
        job_id=9,
        settings={"lora": {"r": 16}, "train": {"seed": 0}},
    )
    assert list(lora.items()) == list(LORA_ROUND.items())
    fast = snapshot_json(labels={}, trained_on=0, eval_posts=0, job_id=None, settings={"language_power": 0.5})
    assert list(fast.items()) == [
        ("labels", {}),
        ("trained_on", 0),
        ("eval_posts", 0),
        ("job_id", None),  # trained outside a job: recorded as such
        ("language_power", 0.5),
    ]
    ensemble = snapshot_json(members=(1, 2), labels={}, trained_on=3, pooling="arithmetic")
    assert list(ensemble.items()) == [
        ("members", [1, 2]),
        ("labels", {}),
        ("trained_on", 3),
        ("pooling", "arithmetic"),
    ]  # no job trains an ensemble: no job_id key
    lineage = {"imported_from": "/a", "origin": {"model_version": 4}}
    assert snapshot_json(lineage=lineage) == lineage


def test_settings_are_snapshotted_as_before() -> None:
    # LoRA's were its __dict__ with the target modules as a list; training's and the encoder's as they are.
    lora = LoraSettings()
    assert settings_json(lora) == lora.__dict__ | {"target_modules": list(lora.target_modules)}
    assert isinstance(settings_json(lora)["target_modules"], list)
    assert settings_json(TrainSettings(max_examples=8)) == TrainSettings(max_examples=8).__dict__
    assert settings_json(EncoderSettings()) == EncoderSettings().__dict__

    @dataclass(frozen=True)
    class Nested:
        pairs: tuple[tuple[int, int], ...] = ((1, 2),)

    assert settings_json(Nested()) == {"pairs": [[1, 2]]}
    assert json.loads(json.dumps(settings_json(lora))) == settings_json(
        lora
    )  # no tuple JSON would turn into a list


def test_a_stored_snapshot_reads_back_the_same(session: Session) -> None:
    project = make_project(session)
    version = ModelVersion(
        project_id=project.id,
        backend=Backend.LORA,
        base_model="test",
        status=ModelStatus.TRAINING,
        training_snapshot=snapshot_json(labels={"1": "pro"}, trained_on=1, job_id=None),
    )
    session.add(version)
    session.flush()
    session.expire(version)
    assert version.training_snapshot == {"labels": {"1": "pro"}, "trained_on": 1, "job_id": None}
    assert TrainingSnapshot.of(version.training_snapshot).labels == {"1": "pro"}
