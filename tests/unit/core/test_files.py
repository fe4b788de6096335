"""Atomic writes leave the old file or the whole new one, never a partial; secret files are 0600 from the start;
one table of corpus file suffixes."""

import os
import stat
from pathlib import Path

import pytest

from core.files import (
    CORPUS_FORMATS,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    corpus_format,
    write_secret,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_replaces_the_whole_file_and_leaves_no_partial(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old and longer than the new content", encoding="utf-8")
    atomic_write_text(target, "new")
    assert target.read_text(encoding="utf-8") == "new"
    atomic_write_bytes(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_an_error_while_writing_keeps_the_old_file_and_removes_the_partial(tmp_path: Path) -> None:
    target = tmp_path / "export.csv"
    target.write_text("complete old export", encoding="utf-8")
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(target) as partial:
        partial.write_text("half of a new", encoding="utf-8")
        raise RuntimeError("disk full")
    assert target.read_text(encoding="utf-8") == "complete old export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.csv"]


def test_an_error_before_the_first_write_leaves_no_file_at_all(tmp_path: Path) -> None:
    target = tmp_path / "new.parquet"
    with pytest.raises(ValueError), atomic_path(target):
        raise ValueError
    assert list(tmp_path.iterdir()) == []


def test_a_partial_left_by_a_crash_is_started_afresh(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    (tmp_path / "run.json.partial").write_text("stale bytes from a killed run", encoding="utf-8")
    with atomic_path(target) as partial, partial.open("a", encoding="utf-8") as handle:
        handle.write("{}")
    assert target.read_text(encoding="utf-8") == "{}"
    assert not (tmp_path / "run.json.partial").exists()


def test_unique_partials_are_hidden_and_distinct(tmp_path: Path) -> None:
    target = tmp_path / "part-00000-000000.parquet"
    with atomic_path(target, unique=True) as first, atomic_path(target, unique=True) as second:
        assert first != second
        assert first.name.startswith(".part-00000-000000.parquet.") and first.name.endswith(".partial")
        first.write_bytes(b"first")
        second.write_bytes(b"second")
    assert target.read_bytes() == b"first"  # the outer block ends last: its rename wins
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_a_secret_file_is_0600_and_replaces_a_wider_one(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("old", encoding="utf-8")
    os.chmod(path, 0o644)
    old_umask = os.umask(0o000)  # the widest umask: the mode must still be 0600
    try:
        write_secret(path, "s3cret")
    finally:
        os.umask(old_umask)
    assert _mode(path) == 0o600
    assert path.read_text(encoding="utf-8") == "s3cret"
    assert [p.name for p in tmp_path.iterdir()] == ["token"]


def test_a_secret_partial_is_0600_before_any_byte_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    real_fdopen = os.fdopen

    def watching_fdopen(descriptor: int, *args: object, **kwargs: object) -> object:
        seen.append(stat.S_IMODE(os.fstat(descriptor).st_mode))
        return real_fdopen(descriptor, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(os, "fdopen", watching_fdopen)
    write_secret(tmp_path / "credentials", "password\ntoken\n")
    assert seen == [0o600]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.csv", "csv"),
        ("a.TSV", "tsv"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("a.json", "jsonl"),
        ("a.parquet", "parquet"),
        ("a.PQ", "parquet"),
        ("a.txt", None),
        ("a", None),
    ],
)
def test_corpus_formats_by_suffix(name: str, expected: str | None) -> None:
    assert corpus_format(Path(name)) == expected
    assert (Path(name).suffix.lower() in CORPUS_FORMATS) == (expected is not None)
