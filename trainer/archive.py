"""The input side of `classify`: corpus files (CSV, TSV, JSONL, Parquet, or folders of them) read as a stream and
staged once as Parquet with row groups of `unit_rows` posts. A row group is a unit of work: one scoring call reads
it, scores it and writes one output shard named after it, so a rerun skips what is done and no row is written
twice. Memory holds one batch of rows, never the corpus."""

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from core.cells import cell_text
from core.columns import text_column
from core.files import CORPUS_FORMATS as SUFFIXES
from core.files import atomic_path, atomic_write_text

ID_NAMES = ("id",)
LANGUAGE_NAMES = ("lang", "language")
READ_BATCH = 10_000
"""Rows held in memory at once while staging."""
PROBLEMS_KEPT = 5
"""Unreadable rows named in the report, per file (all of them are counted)."""


class ClassifyError(Exception):
    """Input or settings that cannot be classified, with a message a researcher can act on."""


@dataclass(frozen=True)
class Columns:
    """Which input columns hold what; None: the usual names (text, tweet... as import; id; lang or language)."""

    text: str | None = None
    id: str | None = None
    language: str | None = None
    keep: tuple[str, ...] = ()


@dataclass(frozen=True)
class Resolved:
    text: str
    id: str | None
    language: str | None
    keep: tuple[str, ...]


@dataclass
class StagedFile:
    """One input file staged as Parquet, and what reading it found."""

    index: int
    source: str
    size: int
    mtime_ns: int
    staged: str
    rows: int = 0
    """Posts staged (to be scored)."""
    groups: int = 0
    """Row groups (units of work) in the staged file."""
    unreadable: int = 0
    """Rows that could not be read (malformed CSV or JSON, not an object): counted and named, not scored."""
    empty: int = 0
    """Rows without text: counted, not scored."""
    problems: list[str] = field(default_factory=list)

    def same_source(self, path: Path) -> bool:
        stat = path.stat()
        return self.source == str(path) and (self.size, self.mtime_ns) == (stat.st_size, stat.st_mtime_ns)


def find_inputs(paths: Sequence[Path]) -> list[Path]:
    """The files to classify: each path given, or every corpus file under a folder (sorted)."""
    if not paths:
        raise ClassifyError("Name at least one input file or folder.")
    found: list[Path] = []
    for path in paths:
        if not path.exists():
            raise ClassifyError(f"{path} does not exist.")
        if path.is_dir():
            inside = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith(".")
            )
            if not inside:
                raise ClassifyError(f"{path} holds no CSV, TSV, JSONL or Parquet files.")
            found.extend(inside)
        elif path.suffix.lower() not in SUFFIXES:
            raise ClassifyError(
                f"Cannot tell the format of {path.name} from its extension: "
                "use .csv, .tsv, .jsonl (.ndjson, .json) or .parquet."
            )
        else:
            found.append(path)
    resolved = [p.resolve() for p in found]
    if len(set(resolved)) != len(resolved):
        raise ClassifyError("An input file is named twice (directly or through a folder).")
    return resolved


def resolve_columns(available: Sequence[str], columns: Columns, name: str) -> Resolved:
    """The columns to read, checked against a file's header before any work starts."""
    listing = ", ".join(available) if available else "none"

    def pick(given: str | None, usual: Sequence[str], option: str) -> str | None:
        if given is not None:
            if given not in available:
                raise ClassifyError(f"{name} has no column '{given}' ({option}); its columns: {listing}.")
            return given
        return next((c for c in usual if c in available), None)

    text = text_column(available) if columns.text is None else pick(columns.text, (), "--text-col")
    if text is None:
        raise ClassifyError(
            f"{name} has no text column: pass --text-col to name it (its columns: {listing})."
        )
    missing = [c for c in columns.keep if c not in available]
    if missing:
        raise ClassifyError(f"{name} has no column {', '.join(missing)} (--keep); its columns: {listing}.")
    reserved = {"id", "language", "label", "confidence", "model_version", "p_pro", "p_anti"}
    reserved |= {"p_neutral", "p_unrelated"}
    clash = [c for c in columns.keep if c in reserved]
    if clash:
        raise ClassifyError(f"--keep {', '.join(clash)}: the output already has a column of that name.")
    return Resolved(
        text=text,
        id=pick(columns.id, ID_NAMES, "--id-col"),
        language=pick(columns.language, LANGUAGE_NAMES, "--lang-col"),
        keep=columns.keep,
    )


# --- Reading: (location, record) pairs, a batch at a time ------------------------------------------------------

Record = dict[str, Any]


@dataclass
class Reading:
    """Rows of one file that could not be read."""

    name: str
    unreadable: int = 0
    problems: list[str] = field(default_factory=list)

    def bad(self, where: str, why: str) -> None:
        self.unreadable += 1
        if len(self.problems) < PROBLEMS_KEPT:
            self.problems.append(f"{self.name}, {where}: {why}")


def header_of(path: Path) -> list[str]:
    """A file's column names (JSONL: the keys of its first records), read before any work starts."""
    kind = SUFFIXES[path.suffix.lower()]
    if path.stat().st_size == 0:
        raise ClassifyError(f"{path.name} is empty.")
    if kind == "parquet":
        try:
            return [str(n) for n in pq.ParquetFile(path).schema_arrow.names]
        except (pa.ArrowException, OSError) as error:
            raise ClassifyError(f"{path.name} is not a readable Parquet file: {error}") from None
    if kind == "jsonl":
        keys: dict[str, None] = {}
        for _, record in _jsonl_records(path, Reading(path.name), limit=100):
            keys.update(dict.fromkeys(str(k) for k in record))
        if not keys:
            raise ClassifyError(f"{path.name} has no JSON object on its first lines.")
        return list(keys)
    with _open_text(path) as handle:
        try:
            header = next(csv.reader(handle, delimiter="\t" if kind == "tsv" else ","))
        except StopIteration:
            raise ClassifyError(f"{path.name} is empty.") from None
        except (csv.Error, UnicodeDecodeError) as error:
            raise ClassifyError(f"{path.name}, line 1: cannot read the header ({error}).") from None
    return [name.strip() for name in header]


def _open_text(path: Path) -> Any:
    return path.open(encoding="utf-8-sig", newline="")


def _jsonl_records(path: Path, reading: Reading, limit: int | None = None) -> Iterator[tuple[int, Record]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if limit is not None and number > limit:
                return
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                reading.bad(f"line {number}", "not UTF-8 text")
                continue
            except json.JSONDecodeError as error:
                reading.bad(f"line {number}", f"not valid JSON ({error.msg})")
                continue
            if not isinstance(record, dict):
                reading.bad(f"line {number}", f"a JSON {type(record).__name__}, not an object")
                continue
            yield number, record


def _csv_records(path: Path, reading: Reading, delimiter: str) -> Iterator[tuple[int, Record]]:
    csv.field_size_limit(2**31 - 1)
    with _open_text(path) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = [name.strip() for name in next(reader)]
            start = reader.line_num + 1
            for row in reader:
                if len(row) != len(header):
                    if any(cell.strip() for cell in row):
                        reading.bad(
                            f"line {start}", f"{len(row)} field(s) where the header has {len(header)}"
                        )
                else:
                    yield start, dict(zip(header, row, strict=True))
                start = reader.line_num + 1
        except csv.Error as error:  # an unclosed quote at the end of the file: the rest is one bad row
            reading.bad(f"line {start}", f"malformed CSV ({error})")
        except UnicodeDecodeError:
            raise ClassifyError(f"{path.name} is not UTF-8 text (near line {start}).") from None


def _parquet_records(path: Path, columns: Sequence[str]) -> Iterator[tuple[int, Record]]:
    number = 0
    # No pre-buffering: with it, pyarrow keeps the column chunks it read, and memory grows with the file.
    reader = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
    for batch in reader.iter_batches(batch_size=READ_BATCH, columns=list(columns)):
        for record in batch.to_pylist():
            number += 1
            yield number, record


def records(path: Path, resolved: Resolved, reading: Reading) -> Iterator[tuple[int, Record]]:
    """(line or row number, record) for every readable row, streamed."""
    kind = SUFFIXES[path.suffix.lower()]
    if kind == "parquet":
        wanted = [c for c in (resolved.text, resolved.id, resolved.language, *resolved.keep) if c]
        return _parquet_records(path, list(dict.fromkeys(wanted)))
    if kind == "jsonl":
        return _jsonl_records(path, reading)
    return _csv_records(path, reading, "\t" if kind == "tsv" else ",")


# --- Staging ---------------------------------------------------------------------------------------------------


def staged_schema(keep: Sequence[str]) -> pa.Schema:
    fields = [("id", pa.string()), ("language", pa.string()), ("text", pa.string())]
    return pa.schema(fields + [(column, pa.string()) for column in keep])


def stage_file(
    index: int, path: Path, resolved: Resolved, folder: Path, unit_rows: int, id_prefix: str
) -> StagedFile:
    """Stream one input file into `folder/<index>.parquet` (written under a temporary name, then renamed)."""
    stat = path.stat()
    target = folder / f"{index:05d}.parquet"
    staged = StagedFile(index, str(path), stat.st_size, stat.st_mtime_ns, str(target))
    reading = Reading(path.name)
    schema = staged_schema(resolved.keep)
    buffer: dict[str, list[str | None]] = {name: [] for name in schema.names}

    def flush(writer: pq.ParquetWriter) -> None:
        writer.write_table(pa.table(buffer, schema=schema), row_group_size=unit_rows)
        staged.groups += 1
        for values in buffer.values():
            values.clear()

    with atomic_path(target) as partial, pq.ParquetWriter(partial, schema) as writer:
        for number, record in records(path, resolved, reading):
            text = cell_text(record.get(resolved.text))
            if text is None or not text.strip():
                staged.empty += 1
                continue
            given_id = cell_text(record.get(resolved.id)) if resolved.id else None
            buffer["id"].append(given_id if given_id else f"{id_prefix}:{number}")
            buffer["language"].append(
                (cell_text(record.get(resolved.language)) or "").strip().lower() or None
                if resolved.language
                else None
            )
            buffer["text"].append(text)
            for column in resolved.keep:
                buffer[column].append(cell_text(record.get(column)))
            staged.rows += 1
            if len(buffer["id"]) == unit_rows:
                flush(writer)
        if buffer["id"]:
            flush(writer)
    staged.unreadable, staged.problems = reading.unreadable, reading.problems
    return staged


def save_record(staged: StagedFile, folder: Path) -> None:
    atomic_write_text(folder / f"{staged.index:05d}.json", json.dumps(asdict(staged), indent=1))


def load_record(index: int, folder: Path) -> StagedFile | None:
    path = folder / f"{index:05d}.json"
    if not path.exists():
        return None
    return StagedFile(**json.loads(path.read_text(encoding="utf-8")))
