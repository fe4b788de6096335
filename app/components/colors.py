"""One colour per label, the same on the label buttons, in charts and in the confusion matrix."""

from typing import Final

LABEL_COLORS: Final[dict[str, str]] = {
    "pro": "#2e7d32",
    "anti": "#c62828",
    "neutral": "#5c6b7a",
    "unrelated": "#8a5a00",
}
