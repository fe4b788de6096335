"""The label scheme of the study, defined once: order, codes and default display names."""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

#: The four labels in the study's order (its codes 1-4). Probability columns, model id2label
#: and exports all use this order.
LABELS: Final[tuple[str, ...]] = ("pro", "anti", "neutral", "unrelated")

#: Default display text per label code; a project may rename them but never the codes.
DEFAULT_LABEL_NAMES: Final[dict[str, str]] = {
    "pro": "Pro-immigration",
    "anti": "Anti-immigration",
    "neutral": "Neutral (about immigration, no stance)",
    "unrelated": "Unrelated to immigration",
}

#: The study's numeric codes, accepted on import.
STUDY_CODES: Final[dict[str, str]] = {str(i + 1): label for i, label in enumerate(LABELS)}

#: Topic = related vs unrelated; stance = pro/anti/neutral among related posts.
STANCE_LABELS: Final[tuple[str, ...]] = LABELS[:3]


@dataclass(frozen=True)
class Consensus:
    label: str | None
    source: str
    """'adjudicated', 'unanimous', 'majority', 'single', 'tie' or 'none'."""
    agreement: float | None
    """Share of annotators that gave the consensus label (None without labels)."""


def consensus(labels: Iterable[str], adjudicated: str | None = None) -> Consensus:
    """The adjudicated label if any, else the majority label; a tie gives no label."""
    counts = Counter(labels)
    total = sum(counts.values())
    if adjudicated is not None:
        return Consensus(adjudicated, "adjudicated", counts[adjudicated] / total if total else None)
    if not total:
        return Consensus(None, "none", None)
    ranked = counts.most_common(2)
    top_label, top_count = ranked[0]
    if len(ranked) > 1 and ranked[1][1] == top_count:
        return Consensus(None, "tie", top_count / total)
    if total == 1:
        return Consensus(top_label, "single", 1.0)
    return Consensus(top_label, "unanimous" if top_count == total else "majority", top_count / total)
