"""Read CSV, JSONL and Parquet files into one row-oriented table of strings, with row locations
that error messages can name ("line 7", "row 7")."""

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from annotator.errors import InputFileError
from core.cells import cell_text
from core.files import corpus_format

FORMATS = ("csv", "jsonl", "parquet")


@dataclass
class Table:
    """Rows of string cells (None where a cell is missing) in `columns` order."""

    columns: list[str]
    rows: list[list[str | None]]
    locations: list[int]
    """For each row, the line (CSV, JSONL) or row number (Parquet) an error message should name."""
    location_unit: str
    """'line' or 'row'."""
    may_have_surrogates: bool = False
    """JSON escapes can produce lone surrogates, which no database can store; other formats are decoded strictly."""

    def where(self, index: int) -> str:
        return f"{self.location_unit} {self.locations[index]}"


def detect_format(path: Path, given: str | None = None) -> str:
    if given:
        fmt = given.lower()
        if fmt not in FORMATS:
            raise InputFileError(f"Unknown format '{given}': use one of {', '.join(FORMATS)}.")
        return fmt
    found = corpus_format(path)
    if found is None:
        raise InputFileError(
            f"Cannot tell the format of {path.name} from its extension: pass --format csv, jsonl or parquet."
        )
    return "csv" if found == "tsv" else found  # the CSV reader takes a .tsv file's tab from its suffix


def read_table(path: Path, fmt: str | None = None) -> Table:
    """Read a whole file; raises InputFileError with a message naming the problem."""
    if not path.exists():
        raise InputFileError(f"{path} does not exist.")
    if path.is_dir():
        raise InputFileError(f"{path} is a folder, not a file.")
    fmt = detect_format(path, fmt)
    if fmt == "parquet":
        table = _read_parquet(path)
    else:
        text = _decode_utf8(path)
        table = _read_jsonl(text, path.name) if fmt == "jsonl" else _read_csv(text, path)
    if not table.rows:
        raise InputFileError(f"{path.name} has no rows to import.")
    return table


def _decode_utf8(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise InputFileError(f"{path.name} is empty.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InputFileError(
            f"{path.name} is not valid UTF-8: line {line} has the byte 0x{data[error.start]:02x} "
            f"at position {error.start}. Save the file as UTF-8 and import it again."
        ) from None
    return text.removeprefix("\ufeff")


def _read_csv(text: str, path: Path) -> Table:
    csv.field_size_limit(2**31 - 1)  # size limits are ours to check, with a clearer message
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise InputFileError(f"{path.name} is empty.") from None
    except (
        csv.Error
    ) as error:  # found by tests/unit/annotator/corpus/test_hostile_input.py: a file that is one quote
        raise InputFileError(f"{path.name}, line 1: malformed CSV header ({error}).") from None
    columns = [name.strip() for name in header]
    _check_header(columns, path.name)
    rows: list[list[str | None]] = []
    locations: list[int] = []
    start = reader.line_num + 1
    width = len(columns)
    try:
        for record in reader:
            if len(record) != width:
                if not any(cell.strip() for cell in record):
                    start = reader.line_num + 1
                    continue  # blank line
                raise InputFileError(
                    f"{path.name}, line {start}: {len(record)} field(s) where the header has {width}. "
                    "Check for an unquoted comma or a missing quote."
                )
            rows.append(record)  # type: ignore[arg-type]
            locations.append(start)
            start = reader.line_num + 1
    except csv.Error as error:
        raise InputFileError(f"{path.name}, line {reader.line_num}: malformed CSV ({error}).") from None
    return Table(columns, rows, locations, "line")


def _check_header(columns: list[str], name: str) -> None:
    seen: set[str] = set()
    for column in columns:
        if not column:
            raise InputFileError(f"{name}: the header has an empty column name.")
        if column in seen:
            raise InputFileError(f"{name}: the header names column '{column}' twice.")
        seen.add(column)


def _read_jsonl(text: str, name: str) -> Table:
    columns: dict[str, int] = {}
    records: list[dict[str, Any]] = []
    locations: list[int] = []
    # Only \n ends a record: str.splitlines would also split at U+2028 and friends, which JSON allows in strings.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputFileError(f"{name}, line {number}: not valid JSON ({error.msg}).") from None
        if not isinstance(record, dict):
            raise InputFileError(
                f"{name}, line {number}: expected a JSON object, found {type(record).__name__}."
            )
        for key in record:
            columns.setdefault(str(key), len(columns))
        records.append(record)
        locations.append(number)
    names = list(columns)
    rows = [[cell_text(record.get(column)) for column in names] for record in records]
    return Table(names, rows, locations, "line", may_have_surrogates=True)


def _read_parquet(path: Path) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        arrow = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise InputFileError(
            f"{path.name} is not a readable Parquet file (truncated or corrupt?): {error}"
        ) from None
    columns = [str(name) for name in arrow.column_names]
    _check_header(columns, path.name)
    data = [[cell_text(value) for value in arrow.column(i).to_pylist()] for i in range(arrow.num_columns)]
    rows = [list(row) for row in zip(*data, strict=True)] if data else []
    return Table(columns, rows, list(range(1, len(rows) + 1)), "row")
