from pathlib import Path

import pytest

from annotator.corpus.readers import detect_format, read_table
from annotator.errors import InputFileError


def test_csv_locations_follow_quoted_newlines(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text('id,text\n1,"two\nlines"\n2,next\n', encoding="utf-8")
    table = read_table(path)
    assert table.rows == [["1", "two\nlines"], ["2", "next"]]
    assert [table.where(0), table.where(1)] == ["line 2", "line 4"]


def test_bom_and_tsv(tmp_path: Path) -> None:
    path = tmp_path / "f.tsv"
    path.write_text("\ufeffid\ttext\n1\thello, world\n", encoding="utf-8")
    assert read_table(path).columns == ["id", "text"]


def test_duplicate_header(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("text,text\na,b\n", encoding="utf-8")
    with pytest.raises(InputFileError, match="names column 'text' twice"):
        read_table(path)


def test_jsonl_must_hold_objects(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text('["a list"]\n', encoding="utf-8")
    with pytest.raises(InputFileError, match="line 1: expected a JSON object"):
        read_table(path)


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="--format"):
        detect_format(tmp_path / "posts.xlsx")
    with pytest.raises(InputFileError, match="does not exist"):
        read_table(tmp_path / "nope.csv")


def test_jsonl_strings_may_hold_line_separators(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text('{"id": "1", "text": "one\u2028two"}\n{"id": "2", "text": "three"}\n', encoding="utf-8")
    table = read_table(path)
    assert table.rows[0][1] == "one\u2028two" and table.where(1) == "line 2"


def test_parquet_float_columns_keep_integer_spelling(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "f.parquet"
    pq.write_table(pa.table({"id": [17.0, 18.0], "text": ["a", "b"], "label": [1.0, None]}), path)
    assert read_table(path).rows == [["17", "a", "1"], ["18", "b", None]]
