"""Settings read once at the entry point from the environment and passed down."""

import os
from dataclasses import dataclass, field
from pathlib import Path


def _default_data_dir() -> Path:
    return Path(os.environ.get("LINGUALOOP_DATA_DIR", "lingualoop-data")).resolve()


@dataclass(frozen=True)
class Settings:
    """Where lingualoop keeps its state."""

    data_dir: Path = field(default_factory=_default_data_dir)
    """Folder for the SQLite database, model caches and adapters (LINGUALOOP_DATA_DIR)."""

    database_url: str = ""
    """SQLAlchemy URL (LINGUALOOP_DATABASE_URL); empty means a SQLite file in data_dir."""

    def __post_init__(self) -> None:
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.data_dir / 'lingualoop.db'}")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def settings_from_env(database_url: str | None = None, data_dir: Path | None = None) -> Settings:
    """Build the settings from explicit values, falling back to the environment."""
    return Settings(
        data_dir=(data_dir or _default_data_dir()).resolve(),
        database_url=database_url or os.environ.get("LINGUALOOP_DATABASE_URL", ""),
    )
