"""Findings from a project: the pool (or a file of probabilities) counted and corrected with a version's eval
errors, on real SQLite and PostgreSQL; each bad input gives one clear message."""

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import get_or_create_user
from annotator.corpus.ingest import ImportOptions, import_file
from annotator.errors import InputFileError, LingualoopError, PermissionDeniedError
from annotator.reports.findings import (
    MISSING,
    compute_findings,
    group_by_columns,
    input_files,
    project_findings,
    project_inputs,
    table_rows,
)
from annotator.reports.quantify import Counted, EvalPosts
from core.labels import LABELS
from db.models import Annotation, Backend, Item, ModelStatus, ModelVersion, Project, Role, Split
from db.versions import write_predictions
from testing.factories import make_project, write_csv, write_jsonl

# The model reads the label right for about 3 posts in 4 and takes the rest for the next label.
RIGHT, WRONG = 0.85, 0.05


def probabilities_for(label: str, right: bool) -> list[float]:
    index = LABELS.index(label) if right else (LABELS.index(label) + 1) % 4
    return [RIGHT if i == index else WRONG for i in range(4)]


def build(
    session: Session, tmp_path: Path, *, eval_per_language: int = 40, scored_evals: bool = True
) -> Project:
    """A project with a country column, labelled eval posts in en and es, and a ready version that scored
    everything: pool posts are 60% anti in es and 20% anti in en."""
    project = make_project(session)
    pool = []
    for language, anti in (("en", 0.2), ("es", 0.6)):
        for i in range(50):
            label = "anti" if i < anti * 50 else ("pro", "neutral", "unrelated")[i % 3]
            country = "" if i == 0 else ("GB" if i % 2 else "ES")
            pool.append({"id": f"{language}{i}", "text": f"pool {language} {i}", "lang": language, "label": "",
                         "country": country, "truth": label})  # fmt: skip
    evals = [
        {"id": f"e{language}{i}", "text": f"eval {language} {i}", "lang": language, "label": LABELS[i % 4]}
        for language in ("en", "es")
        for i in range(eval_per_language)
    ]
    import_file(session, project, write_csv(tmp_path / "pool.csv", pool), by=OPERATOR)
    import_file(
        session,
        project,
        write_csv(tmp_path / "eval.csv", evals),
        options=ImportOptions(split=Split.EVAL),
        by=OPERATOR,
    )
    version = ModelVersion(
        project_id=project.id, backend=Backend.FAST, base_model="test", status=ModelStatus.READY
    )
    session.add(version)
    session.flush()
    items = session.scalars(select(Item).where(Item.project_id == project.id).order_by(Item.id)).all()
    scored = [item for item in items if item.split == Split.POOL or scored_evals]
    rows = []
    wrong = np.random.default_rng(0).random(len(scored)) < 0.25  # errors independent of the label
    for n, item in enumerate(scored):
        truth = item.meta["truth"] if item.split == Split.POOL else LABELS[int(item.external_id[3:]) % 4]
        rows.append(probabilities_for(truth, right=not wrong[n]))
    write_predictions(session, version.id, [item.id for item in scored], np.array(rows))
    version.is_current = True
    session.flush()
    return project


def test_shares_per_language_are_corrected_toward_the_truth(session: Session, tmp_path: Path) -> None:
    project = build(session, tmp_path)
    findings = project_findings(session, project, ["lang"], by=OPERATOR, resamples=40, min_eval=20)
    assert [g.key for g in findings.groups] == [("en",), ("es",)]
    es = findings.groups[1]
    assert es.posts == 50 and es.pooled_languages == []
    raw, corrected = es.point["cc"][1], es.point["pacc"][1]
    assert abs(corrected - 0.6) < abs(raw - 0.6)  # the correction moves the anti share toward the truth
    rows = table_rows(findings)
    assert {r["method"] for r in rows} == {"cc", "acc", "pacc", "emq"}
    assert {r["scope"] for r in rows} == {"all", "related"}
    assert len(rows) == 2 * 4 * (4 + 3)  # languages x methods x (four labels + three related)
    row = next(r for r in rows if r["lang"] == "es" and r["label"] == "anti" and r["method"] == "pacc")
    assert row["ci_low"] <= row["share"] <= row["ci_high"] and row["eval_posts"] == 40


def test_metadata_groups_and_missing_values(session: Session, tmp_path: Path) -> None:
    project = build(session, tmp_path)
    findings = project_findings(session, project, group_by_columns("lang,country"), by=OPERATOR, resamples=5)
    keys = {g.key for g in findings.groups}
    assert ("es", "ES") in keys and ("en", "GB") in keys and ("en", MISSING) in keys
    assert sum(g.posts for g in findings.groups) == 100
    by_country = project_findings(session, project, ["country"], by=OPERATOR, resamples=5)
    spain = next(g for g in by_country.groups if g.key == ("ES",))
    assert spain.languages == {"en": 24, "es": 24}  # each language corrected with its own errors


def test_small_languages_are_left_raw_or_use_pooled_errors_and_say_so(
    session: Session, tmp_path: Path
) -> None:
    project = build(session, tmp_path, eval_per_language=12)
    raw = project_findings(session, project, ["lang"], by=OPERATOR, resamples=5, min_eval=20)
    assert all(g.pooled_languages for g in raw.groups)
    assert any(
        "Too few eval posts (under 20)" in n and "en (12)" in n and "uncorrected" in n for n in raw.notes
    )
    assert {r["errors"] for r in table_rows(raw)} == {"raw"}
    for group in raw.groups:  # left raw: every method gives the counted shares
        assert all(np.allclose(group.point[m], group.point["cc"]) for m in ("acc", "pacc", "emq"))
    pooled = project_findings(
        session, project, ["lang"], by=OPERATOR, resamples=5, min_eval=20, fallback="pooled"
    )
    assert {r["errors"] for r in table_rows(pooled)} == {"pooled"}
    assert any("errors pooled over all languages (marked 'pooled')" in note for note in pooled.notes)
    assert not np.allclose(pooled.groups[1].point["pacc"], pooled.groups[1].point["cc"])
    with pytest.raises(LingualoopError, match="Unknown fallback guess"):
        project_findings(session, project, ["lang"], by=OPERATOR, resamples=5, fallback="guess")


def test_bad_inputs_each_get_one_clear_message(session: Session, tmp_path: Path) -> None:
    project = build(session, tmp_path, scored_evals=False)
    with pytest.raises(LingualoopError, match="has no predictions for the eval posts"):
        project_findings(session, project, ["lang"], by=OPERATOR, resamples=5)
    other = make_project(session, "no-eval")
    with pytest.raises(LingualoopError, match="current model version"):
        project_findings(session, other, ["lang"], by=OPERATOR)
    with pytest.raises(LingualoopError, match="Say what to group by"):
        group_by_columns(" , ")
    annotator = get_or_create_user(session, "ann", role=Role.ANNOTATOR)
    with pytest.raises(PermissionDeniedError):
        project_findings(session, project, ["lang"], by=annotator)


def test_unknown_column_and_missing_eval_split(session: Session, tmp_path: Path) -> None:
    project = build(session, tmp_path)
    with pytest.raises(LingualoopError, match=r"No post has a column named 'region'.*country"):
        project_findings(session, project, ["lang", "region"], by=OPERATOR)
    version = session.scalars(select(ModelVersion)).one()
    version.status = ModelStatus.TRAINING
    session.flush()
    with pytest.raises(LingualoopError, match="not ready"):
        project_findings(session, project, ["lang"], by=OPERATOR, version_id=version.id)


def test_a_project_without_labelled_eval_posts_is_told_how_to_add_them(
    session: Session, tmp_path: Path
) -> None:
    project = make_project(session)
    import_file(
        session, project, write_csv(tmp_path / "p.csv", [{"id": "a", "text": "x", "lang": "en"}]), by=OPERATOR
    )
    version = ModelVersion(
        project_id=project.id, backend=Backend.FAST, base_model="t", status=ModelStatus.READY
    )
    session.add(version)
    session.flush()
    with pytest.raises(LingualoopError, match=r"no labelled eval posts.*--split eval"):
        project_findings(session, project, ["lang"], by=OPERATOR, version_id=version.id)


def _scored_file(path: Path, version: int | None, rows: int = 30, **extra: str) -> Path:
    records = [
        {"id": str(i), "language": "es", "region": "north" if i % 2 else "south"}
        | dict(zip([f"p_{label}" for label in LABELS], probabilities_for(LABELS[i % 4], True), strict=True))
        | ({"model_version": str(version)} if version is not None else {})
        | extra
        for i in range(rows)
    ]
    return write_csv(path, records)


def test_a_file_of_probabilities_is_counted_with_its_version(session: Session, tmp_path: Path) -> None:
    project = build(session, tmp_path)
    version_id = session.scalars(select(ModelVersion.id)).one()
    folder = tmp_path / "scored"
    folder.mkdir()
    _scored_file(folder / "a.csv", version_id)
    _scored_file(folder / "b.csv", version_id)
    inputs = project_inputs(
        session, project, ["lang", "region"], by=OPERATOR, input_paths=input_files(folder)
    )
    assert inputs.version_id == version_id and len(inputs.counted.probabilities) == 60
    assert sorted(inputs.counted.group_keys) == [("es", "north"), ("es", "south")]


def test_every_format_import_reads_is_counted(session: Session, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    project = build(session, tmp_path)
    version_id = session.scalars(select(ModelVersion.id)).one()
    folder = tmp_path / "scored"
    folder.mkdir()
    records = [
        {"id": str(i), "language": "es", "model_version": version_id}
        | dict(zip([f"p_{label}" for label in LABELS], probabilities_for(LABELS[i % 4], True), strict=True))
        for i in range(30)
    ]
    pq.write_table(pa.Table.from_pylist(records), folder / "a.pq")
    write_jsonl(folder / "b.ndjson", records)
    (folder / "manifest.json").write_text('{"rows_scored": 60}')  # classify's, beside its shards: not posts
    files = input_files(folder)
    assert [p.name for p in files] == ["a.pq", "b.ndjson"]
    inputs = project_inputs(session, project, ["lang"], by=OPERATOR, input_paths=files)
    assert len(inputs.counted.probabilities) == 60
    named = write_jsonl(tmp_path / "c.json", records)  # named on its own, .json is JSONL (as import)
    inputs = project_inputs(session, project, ["lang"], by=OPERATOR, input_paths=input_files(named))
    assert len(inputs.counted.probabilities) == 30


def test_bad_files_each_get_one_clear_message(session: Session, tmp_path: Path) -> None:
    project = build(session, tmp_path)
    version_id = session.scalars(select(ModelVersion.id)).one()

    def inputs(path: Path, **options: object) -> object:
        return project_inputs(session, project, ["lang"], by=OPERATOR, input_paths=[path], **options)  # type: ignore[arg-type]

    with pytest.raises(InputFileError, match="does not exist"):
        input_files(tmp_path / "nowhere")
    empty_folder = tmp_path / "empty"
    empty_folder.mkdir()
    with pytest.raises(InputFileError, match="holds no"):
        input_files(empty_folder)
    no_probabilities = write_csv(tmp_path / "x.csv", [{"id": "1", "lang": "en", "text": "hello"}])
    with pytest.raises(InputFileError, match=r"has no column 'p_pro'.*it has: id, lang, text"):
        inputs(no_probabilities)
    with pytest.raises(LingualoopError, match="Say which model version"):
        inputs(_scored_file(tmp_path / "unnamed.csv", None))
    with pytest.raises(LingualoopError, match="not 99"):
        inputs(_scored_file(tmp_path / "v.csv", version_id), version_id=99)
    with pytest.raises(LingualoopError, match="no model version 98"):
        inputs(_scored_file(tmp_path / "v98.csv", 98))
    bad = _scored_file(tmp_path / "bad.csv", version_id, rows=3, p_anti="0.9")
    with pytest.raises(InputFileError, match=r"bad\.csv, row 1: .* sum to 1"):
        inputs(bad)
    header_only = tmp_path / "header.csv"
    header_only.write_text("id,lang,p_pro,p_anti,p_neutral,p_unrelated,model_version\n")
    with pytest.raises(InputFileError, match=r"header\.csv has no rows"):
        inputs(header_only)


def test_parquet_shards_are_read_in_batches_and_eval_rows_left_out(session: Session, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    project = build(session, tmp_path)
    version_id = session.scalars(select(ModelVersion.id)).one()
    folder = tmp_path / "shards"
    folder.mkdir()
    for shard in range(2):
        n = 25_000  # more than one record batch
        columns = {f"p_{label}": np.full(n, 0.25) for label in LABELS}
        columns["p_anti"] = np.full(n, 0.4)
        columns["p_pro"] = np.full(n, 0.1)
        table = pa.table(
            {
                "id": [f"{shard}-{i}" for i in range(n)],
                "language": ["tr"] * n,
                "model_version": [version_id] * n,
                "split": ["eval" if i < 10 else "pool" for i in range(n)],
                **columns,
            }
        )
        pq.write_table(table, folder / f"part-{shard}.parquet", row_group_size=5_000)
    (folder / "manifest.json").write_text("{}")  # not a scored-posts file: ignored
    inputs = project_inputs(session, project, ["lang"], by=OPERATOR, input_paths=input_files(folder))
    assert len(inputs.counted.probabilities) == 2 * (25_000 - 10) and inputs.counted.group_keys == [("tr",)]
    assert any("20 rows of the eval split were left out" in note for note in inputs.notes)


def test_the_fingerprint_changes_when_an_eval_label_changes(session: Session, tmp_path: Path) -> None:
    project = build(session, tmp_path)
    before = project_inputs(session, project, ["lang"], by=OPERATOR).fingerprint()
    assert project_inputs(session, project, ["lang"], by=OPERATOR).fingerprint() == before
    item = session.scalars(select(Item).where(Item.split == Split.EVAL).order_by(Item.id)).first()
    assert item is not None
    for annotation in session.scalars(select(Annotation).where(Annotation.item_id == item.id)):
        annotation.label = "unrelated" if annotation.label != "unrelated" else "pro"
    session.flush()
    assert project_inputs(session, project, ["lang"], by=OPERATOR).fingerprint() != before


def test_findings_say_when_a_language_never_gets_a_label() -> None:
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 4, 200)
    said = np.where(gold == 0, 2, gold)  # pro never given: in Italian
    counted = Counted(np.eye(4)[said], np.array(["it"] * 200), np.zeros(200, dtype=np.int64), [("it",)])
    evals = EvalPosts(np.eye(4)[said[:40]], gold[:40], np.array(["it"] * 40))
    findings = compute_findings(counted, evals, 1, ["lang"], resamples=5)
    assert any(
        note.startswith("In it the model never gives pro (none of its 200 posts")
        and "cannot be trusted" in note
        for note in findings.notes
    ), findings.notes
