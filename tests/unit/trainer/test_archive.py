"""The input side of classify: streamed staging into row groups, ids and languages, and each kind of bad input
giving one clear message before any work starts (or, for single rows, being counted and named)."""

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from testing.factories import write_csv, write_jsonl
from trainer.archive import (
    ClassifyError,
    Columns,
    StagedFile,
    find_inputs,
    header_of,
    resolve_columns,
    stage_file,
)


def _stage(path: Path, tmp_path: Path, columns: Columns | None = None, unit_rows: int = 4) -> StagedFile:
    resolved = resolve_columns(header_of(path), columns or Columns(), path.name)
    staging = tmp_path / "staging"
    staging.mkdir(exist_ok=True)
    return stage_file(0, path, resolved, staging, unit_rows, path.stem)


def test_csv_is_staged_in_row_groups_with_given_and_made_up_ids(tmp_path: Path) -> None:
    rows = [
        {"id": f"x{i}" if i % 2 else "", "text": f"post {i}", "lang": "EN", "country": "fr"}
        for i in range(10)
    ]
    staged = _stage(write_csv(tmp_path / "posts.csv", rows), tmp_path, Columns(keep=("country",)))
    assert (staged.rows, staged.groups, staged.unreadable, staged.empty) == (10, 3, 0, 0)
    parquet = pq.ParquetFile(staged.staged)
    assert [parquet.metadata.row_group(g).num_rows for g in range(3)] == [4, 4, 2]
    table = parquet.read()
    assert table.column_names == ["id", "language", "text", "country"]
    ids = table.column("id").to_pylist()
    assert ids[:3] == ["posts:2", "x1", "posts:4"]  # no id: the file's name and line
    assert set(table.column("language").to_pylist()) == {"en"}


def test_tsv_jsonl_and_parquet_with_named_columns(tmp_path: Path) -> None:
    tsv = tmp_path / "t.tsv"
    tsv.write_text("tweet\tcode\nhello there\tgr\nsecond\t\n", encoding="utf-8")
    staged = _stage(tsv, tmp_path, Columns(text="tweet", language="code"))
    table = pq.read_table(staged.staged)
    assert table.column("text").to_pylist() == ["hello there", "second"]
    assert table.column("language").to_pylist() == ["gr", None]  # empty: detected when scored

    jsonl = write_jsonl(tmp_path / "j.jsonl", [{"text": "a", "meta": {"k": 1}}, {"text": "b", "meta": None}])
    staged = _stage(jsonl, tmp_path, Columns(keep=("meta",)))
    assert pq.read_table(staged.staged).column("meta").to_pylist() == ['{"k": 1}', None]

    pq.write_table(pa.table({"id": [7, 8], "text": ["p", "q"], "n": [1.5, 2.0]}), tmp_path / "p.parquet")
    staged = _stage(tmp_path / "p.parquet", tmp_path, Columns(keep=("n",)))
    table = pq.read_table(staged.staged)
    assert table.column("id").to_pylist() == ["7", "8"] and table.column("n").to_pylist() == ["1.5", "2"]


def test_unreadable_and_empty_rows_are_counted_and_named_not_scored(tmp_path: Path) -> None:
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text('id,text\n1,fine\n2,too,many\n3,""\n4,also fine\n', encoding="utf-8")
    staged = _stage(csv_file, tmp_path)
    assert (staged.rows, staged.unreadable, staged.empty) == (2, 1, 1)
    assert staged.problems == ["bad.csv, line 3: 3 field(s) where the header has 2"]

    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text('{"text": "ok"}\n{"text": \n[1, 2]\n\n{"text": "ok too"}\n', encoding="utf-8")
    staged = _stage(jsonl, tmp_path)
    assert (staged.rows, staged.unreadable) == (2, 2)
    assert staged.problems[0].startswith("bad.jsonl, line 2: not valid JSON")
    assert staged.problems[1] == "bad.jsonl, line 3: a JSON list, not an object"


def test_the_text_column_is_guessed_as_import_guesses_it(tmp_path: Path) -> None:
    tweets = write_csv(tmp_path / "tweets.csv", [{"tweet_id": "9", "tweet": "hola a todos"}])
    staged = _stage(tweets, tmp_path)
    assert pq.read_table(staged.staged).column("text").to_pylist() == ["hola a todos"]
    header = ["id", "Post", "text"]
    assert resolve_columns(header, Columns(), "f.csv").text == "text"  # text first, as import
    assert resolve_columns(["id", "Post"], Columns(), "f.csv").text == "Post"  # any case, as import
    assert resolve_columns(header, Columns(text="Post"), "f.csv").text == "Post"  # a named column wins


def test_a_missing_language_is_detected_as_an_iso_639_1_code() -> None:
    from core.languages import LANGUAGE_NAMES
    from trainer.classify import LanguageGuess

    guess = LanguageGuess()
    texts = ("the weather is lovely today", "das Wetter ist heute schön", "佢哋喺度做緊嘢", "12345 678")
    found = [guess(text) for text in texts]
    assert found[:3] == ["en", "de", "zh"]  # py3langid alone answers yue (Cantonese): no ISO 639-1 code
    assert all(code in LANGUAGE_NAMES for code in found)  # ... and zxx for digits


@pytest.mark.parametrize(
    ("content", "columns", "message"),
    [
        ("id,words\n1,x\n", Columns(), "has no text column: pass --text-col"),  # no usual name
        ("id,text\n1,x\n", Columns(text="body"), "has no column 'body' (--text-col); its columns: id, text"),
        ("id,text\n1,x\n", Columns(keep=("country",)), "has no column country (--keep)"),
        (
            "id,text,label\n1,x,pro\n",
            Columns(keep=("label",)),
            "--keep label: the output already has a column",
        ),
        ("", Columns(), "is empty"),
    ],
)
def test_bad_columns_and_empty_files_are_refused_up_front(
    tmp_path: Path, content: str, columns: Columns, message: str
) -> None:
    path = tmp_path / "in.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ClassifyError, match=re.escape(message)):
        resolve_columns(header_of(path), columns, path.name)


def test_inputs_are_files_or_folders_of_known_formats(tmp_path: Path) -> None:
    with pytest.raises(ClassifyError, match="does not exist"):
        find_inputs([tmp_path / "missing.csv"])
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(ClassifyError, match=r"Cannot tell the format of notes\.txt"):
        find_inputs([tmp_path / "notes.txt"])
    folder = tmp_path / "archive"
    folder.mkdir()
    with pytest.raises(ClassifyError, match="holds no CSV, TSV, JSONL or Parquet files"):
        find_inputs([folder])
    (folder / "2024").mkdir()
    write_csv(folder / "2024" / "b.csv", [{"text": "x"}])
    write_csv(folder / "a.csv", [{"text": "x"}])
    assert [p.name for p in find_inputs([folder])] == ["b.csv", "a.csv"]  # sorted by path: 2024/b, a
    with pytest.raises(ClassifyError, match="named twice"):
        find_inputs([folder, folder / "a.csv"])
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(ClassifyError, match="not a readable Parquet file"):
        header_of(broken)
