"""Files written whole or not at all, secret files readable by their owner only, and the corpus file formats."""

import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Final

CORPUS_FORMATS: Final[Mapping[str, str]] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",  # one JSON object per line, as the readers on both sides parse it
    ".parquet": "parquet",
    ".pq": "parquet",
}
"""Corpus file suffix -> format (csv, tsv, jsonl, parquet): what import, classify and findings read."""


def corpus_format(path: Path) -> str | None:
    """The format of a corpus file from its suffix (any case), or None when the suffix is not one we read."""
    return CORPUS_FORMATS.get(path.suffix.lower())


def partial_path(path: Path, *, unique: bool = False) -> Path:
    """Where `path` is written before it is renamed: beside it, since os.replace is atomic only within one file
    system. `unique`: a hidden name of its own (.NAME.HEX.partial), for writers that may race on one target;
    folder scans skip hidden names."""
    if unique:
        return path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    return path.with_name(path.name + ".partial")


@contextmanager
def atomic_path(path: Path, *, unique: bool = False) -> Iterator[Path]:
    """Yields the partial path to write `path`'s content to; when the block ends it replaces `path` in one step,
    and when the block raises it is removed. Readers see the old file or the new one, never half of one."""
    partial = partial_path(path, unique=unique)
    partial.unlink(missing_ok=True)  # left by a crash: the writer starts from nothing
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes, *, unique: bool = False) -> None:
    with atomic_path(path, unique=unique) as partial:
        partial.write_bytes(data)


def atomic_write_text(path: Path, text: str, *, unique: bool = False) -> None:
    """`text` as UTF-8, whole or not at all."""
    with atomic_path(path, unique=unique) as partial:
        partial.write_text(text, encoding="utf-8")


def write_secret(path: Path, text: str) -> None:
    """`text` in a file only its owner can read (0600 from the moment it exists, never briefly wider), replacing
    any earlier file whole."""
    with atomic_path(path, unique=True) as partial:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchmod(descriptor, 0o600)  # exactly 0600 whatever the umask, which can only narrow a mode
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
