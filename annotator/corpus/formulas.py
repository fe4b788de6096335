"""CSV formula injection: a cell that starts with = + - @ (or a tab or carriage return) is run as a formula by
spreadsheet programs. Exports prefix such cells with an apostrophe (OWASP's advice), and a cell that already starts
with apostrophes before such a character gets one more, so that importing a lingualoop CSV export removes exactly
one and gives back the original text (a tweet that starts with @user survives the round trip)."""

import re

from annotator.corpus.readers import Table

_RISKY = re.compile(r"^'*[=+\-@\t\r]")
_ESCAPED = re.compile(r"^'+[=+\-@\t\r]")
EXPORT_MARKER_COLUMNS = frozenset({"label_source", "n_labels"})
"""Columns that only a lingualoop export has: a CSV with them was neutralised on the way out."""


def neutralise(value: object) -> object:
    return "'" + value if isinstance(value, str) and _RISKY.match(value) else value


def restore(value: str | None) -> str | None:
    return value[1:] if value is not None and _ESCAPED.match(value) else value


def restore_export(table: Table) -> Table:
    """Undo `neutralise` in every cell of a table read from a lingualoop CSV export; other tables are returned
    as they are."""
    if not set(table.columns) >= EXPORT_MARKER_COLUMNS:
        return table
    table.rows = [[restore(cell) for cell in row] for row in table.rows]
    return table
