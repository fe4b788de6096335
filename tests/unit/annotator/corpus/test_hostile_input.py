"""Hostile input, property-based (hypothesis): random bytes, random Unicode with bidi controls, zero-width joiners,
emoji and lone surrogates, and huge rows. An import either keeps every post's text exactly or fails with a message
for the researcher (a LingualoopError), and a failed import leaves the database as it was."""

import json
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.corpus.ingest import import_file
from annotator.errors import LingualoopError
from db.models import Item, Project
from testing.factories import make_project, table_counts

pytestmark = pytest.mark.reliability
HOSTILE = st.sampled_from(
    [
        "\u202e",
        "\u202d",
        "\u200f",
        "\u200e",
        "\u2066",
        "\u2069",
        "\u200d",
        "\u200b",
        "\ufeff",
        "\U0001f469\u200d\U0001f467",
        "\u0301",
        "\ud800",
        "\udfff",
        "\x00",
        "\n",
        "\r",
        "\t",
        ",",
        '"',
        "<script>alert(1)</script>",
        "**bold**",
        "=1+1",
    ]
)
TEXTS = st.lists(HOSTILE | st.text(min_size=0, max_size=3), min_size=0, max_size=12).map("".join)
SLOW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _import(session: Session, project: Project, path: Path) -> LingualoopError | None:
    before = table_counts(session)
    try:
        with session.begin_nested():
            import_file(session, project, path, by=OPERATOR)
    except LingualoopError as error:
        assert table_counts(session) == before  # nothing half-written
        return error
    return None


@SLOW
@given(data=st.binary(max_size=400))
def test_random_bytes_import_or_fail_clearly(session: Session, tmp_path: Path, data: bytes) -> None:
    project = session.scalar(select(Project)) or make_project(session)
    path = tmp_path / "random.csv"
    path.write_bytes(data)
    _import(session, project, path)  # any other exception fails the test


@SLOW
@given(texts=st.lists(TEXTS, min_size=1, max_size=4))
def test_random_unicode_is_kept_exactly_or_refused(
    session: Session, tmp_path: Path, texts: list[str]
) -> None:
    marker = f"{len(texts)}-{abs(hash(tuple(texts)))}"
    # A fresh project each time, so that no text collapses into a post of an earlier example.
    project = make_project(session, name=f"unicode-{uuid.uuid4().hex}")
    path = tmp_path / "posts.jsonl"
    rows = [{"id": f"{marker}-{i}", "text": text, "lang": "en"} for i, text in enumerate(texts)]
    path.write_text(
        "\n".join(json.dumps(row) for row in rows), encoding="utf-8"
    )  # \ud800 travels as an escape
    error = _import(session, project, path)
    if error is None:
        stored = dict(
            session.execute(
                select(Item.external_id, Item.text).where(Item.external_id.like(f"{marker}-%"))
            ).all()
        )
        assert rows[0]["id"] in stored  # the first copy of any text is always kept
        for row in rows:  # a duplicate collapses into the first copy; every stored text is the text given
            if row["id"] in stored:  # as the file gives it: the escapes of a surrogate pair are one character
                assert stored[row["id"]] == json.loads(json.dumps(row["text"]))
    else:
        assert any(
            s in str(error) for s in ("empty", "surrogate", "NUL", "duplicate", "failed validation")
        ), error


def test_a_huge_row_is_refused_with_its_size(session: Session, tmp_path: Path) -> None:
    project = make_project(session)
    path = tmp_path / "huge.jsonl"
    path.write_text(json.dumps({"id": "big", "text": "x" * 10_000_000, "lang": "en"}), encoding="utf-8")
    error = _import(session, project, path)
    assert error is not None and "10,000,000 characters" in str(error)
