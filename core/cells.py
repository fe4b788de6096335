"""File cells as text: the one rule that import (annotator/corpus/readers.py) and classify (trainer/archive.py) follow
when they read CSV, JSONL and Parquet values."""

import json
from typing import Any


def cell_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # ids and label codes in columns that pandas made float because of gaps
    if isinstance(value, bool | int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)
