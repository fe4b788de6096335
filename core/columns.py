"""Which column of a corpus file holds the post's text, by the names real corpora use for it."""

from collections.abc import Sequence
from typing import Final

TEXT_COLUMNS: Final[tuple[str, ...]] = ("text", "post", "content", "body", "tweet", "full_text", "message")
"""Names of the text column, in the order they are tried."""


def find_column(columns: Sequence[str], candidates: Sequence[str]) -> str | None:
    """The first candidate that names a column, compared without case (an exact name wins over one that differs
    only in case); None when none does. Returns the column's name as the file spells it."""
    for candidate in candidates:
        if candidate in columns:
            return candidate
        same = [name for name in columns if name.lower() == candidate.lower()]
        if same:
            return same[0]
    return None


def text_column(columns: Sequence[str]) -> str | None:
    """The column that holds the post's text when none was named (`text`, else `post`, `content`, `tweet`...)."""
    return find_column(columns, TEXT_COLUMNS)
