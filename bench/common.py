"""Shared helpers of the model benchmarks: the shared corpus and the worker's model loader."""

import csv
import os
from pathlib import Path
from typing import Any

from trainer.config import LoraSettings, ModelSettings
from trainer.modeling import LoadedModel, load_model

SHARED = Path(
    os.environ.get(
        "LINGUALOOP_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared/data/immigration-tweets"
    )
)
DATA_DIR = Path(os.environ.get("LINGUALOOP_DATA_DIR", "lingualoop-data"))
MODELS_DIR = DATA_DIR / "models"
EMBEDDINGS_DIR = DATA_DIR / "embeddings"
"""The fast model's e5 embeddings of the shared corpus, cached by the benches that need them."""


def paired_text(difference: dict[str, dict[str, Any]], separator: str = ", ") -> str:
    """core.crossval.paired_difference's metrics as 'metric +d [low, high]'."""
    return separator.join(
        f"{metric} {d['difference']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"
        for metric, d in difference.items()
    )


def shared_rows(name: str = "train.csv") -> list[dict[str, str]]:
    with (SHARED / name).open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def load(base_model: str, r: int = 16, max_post_tokens: int = 96, dropout: float = 0.0) -> LoadedModel:
    return load_model(
        ModelSettings(base_model=base_model),
        LoraSettings(r=r, alpha=2 * r, dropout=dropout),
        MODELS_DIR,
        max_post_tokens=max_post_tokens,
    )
