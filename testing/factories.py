"""Test data factories: small files and projects."""

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.corpus.projects import create_project
from db.models import (
    Annotation,
    AnnotationEvent,
    AnnotationKind,
    AnnotationSource,
    ImportRun,
    Item,
    Project,
    Split,
    User,
)


def write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> Path:
    names = list(columns or rows[0].keys())
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def posts(n: int, language: str = "en", prefix: str = "p", label: str | None = None) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}{i}",
            "text": f"Post number {i} about {prefix} and borders",
            "lang": language,
            "label": label or "",
        }
        for i in range(n)
    ]


def make_project(session: Session, name: str = "study", languages: Sequence[str] = ("en", "es")) -> Project:
    return create_project(session, name, languages=languages, by=OPERATOR)


def table_counts(session: Session) -> dict[str, int]:
    """Rows per table that an import writes: compare before and after a failed import."""
    return {
        model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
        for model in (Item, Annotation, AnnotationEvent, ImportRun, User)
    }


def add_label(session: Session, item_id: int, user_id: int, label: str = "pro") -> None:
    """An annotator's label given in the app."""
    session.add(
        Annotation(
            item_id=item_id,
            user_id=user_id,
            kind=AnnotationKind.LABEL,
            label=label,
            source=AnnotationSource.APP,
        )
    )
    session.flush()


def unlabelled_pool_items(session: Session, limit: int) -> list[int]:
    """Ids of pool posts nobody has answered yet, oldest first."""
    answered = select(Annotation.item_id)
    return list(
        session.scalars(
            select(Item.id)
            .where(Item.split == Split.POOL, Item.id.not_in(answered))
            .order_by(Item.id)
            .limit(limit)
        )
    )
