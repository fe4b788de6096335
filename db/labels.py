"""The label scheme of the study, defined once: order, codes and default display names."""

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
