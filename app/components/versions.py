"""The model version picker the Findings and Export pages share: ready versions, newest first, opening on the
current one."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from db.versions import ready_versions


@dataclass(frozen=True)
class VersionChoices:
    names: dict[int, str]
    """Ready version id -> "version N (backend)", with " · current" on the current one; newest first."""
    current: int | None


def version_choices(session: Session, project_id: int) -> VersionChoices:
    ready = sorted(ready_versions(session, project_id), key=lambda v: v.id, reverse=True)
    names = {v.id: f"version {v.id} ({v.backend})" + (" · current" if v.is_current else "") for v in ready}
    return VersionChoices(names, next((v.id for v in ready if v.is_current), None))


def version_picker(container: Any, choices: VersionChoices, key: str) -> int:
    """A select box of `choices` (which must not be empty) in `container` (st, or a column)."""
    ids = list(choices.names)
    picked: int = container.selectbox(
        "Model version",
        ids,
        index=ids.index(choices.current) if choices.current in ids else 0,
        format_func=choices.names.get,
        key=key,
    )
    return picked
