"""The annotate page's answer panel: a Streamlit custom component (components v2, no build step) that shows the
post with its four labels, skip, flag and undo on keys 1-4, S, F and U (answer_panel.js, answer_panel.css).

Why a component and not st.button shortcuts: a button's callback runs with the arguments of the newest script
run, which may already be drawing the next post while the browser still shows the last one, so a fast key press
could land on a post that was never on screen. The panel instead sends the post and lease that were on screen with
every answer, and takes no input until the server has answered (`ack`)."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from annotator.annotation.annotate import Answer, Shown
from annotator.errors import LingualoopError
from app.components.colors import LABEL_COLORS
from core.labels import LABELS
from core.languages import is_rtl, language_name

_HERE = Path(__file__).parent
_mount = st.components.v2.component(
    "lingualoop_answer_panel",
    html="",
    css=(_HERE / "answer_panel.css").read_text(encoding="utf-8"),
    js=(_HERE / "answer_panel.js").read_text(encoding="utf-8"),
    isolate_styles=False,
)

ACTIONS = ("label", "skip", "flag", "undo")


@dataclass(frozen=True)
class PanelEvent:
    """One answer sent by the panel: `id` is the panel's own id for it (echoed back as `ack`)."""

    id: str
    action: str
    shown: Shown | None
    answer: Answer | None
    """None for undo."""
    seconds: float | None


def parse_event(payload: Any) -> PanelEvent:
    """Check what the browser sent; raise LingualoopError on anything malformed (nothing is recorded then)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
        raise LingualoopError("The answer could not be read: nothing was recorded.")
    action = payload.get("action")
    if action not in ACTIONS:
        raise LingualoopError(f"Unknown action '{action}': nothing was recorded.")
    seconds = payload.get("seconds")
    seconds = float(seconds) if isinstance(seconds, int | float) and seconds >= 0 else None
    if action == "undo":
        return PanelEvent(payload["id"], action, None, None, seconds)
    item_id, lease_id = payload.get("item_id"), payload.get("lease_id")
    if not isinstance(item_id, int) or not isinstance(lease_id, int):
        raise LingualoopError("The answer did not say which post it was for: nothing was recorded.")
    if action == "label":
        answer = Answer.of_label(str(payload.get("label")))
    elif action == "skip":
        answer = Answer.skip()
    else:
        answer = Answer.flag(str(payload.get("reason") or ""))
    return PanelEvent(payload["id"], action, Shown(item_id, lease_id), answer, seconds)


@dataclass(frozen=True)
class PanelPost:
    item_id: int
    lease_id: int
    external_id: str
    text: str
    language: str


def answer_panel(
    *,
    key: str,
    post: PanelPost,
    label_names: dict[str, str],
    ack: str | None,
    notice: str | None,
    suggestion: str | None,
    on_answer: Callable[[], None],
) -> None:
    """Mount the panel. `on_answer` runs (as a callback, before the page is drawn again) with the event in
    st.session_state[key]["answer"]."""
    _mount(
        key=key,
        data={
            "post": {
                "item_id": post.item_id,
                "lease_id": post.lease_id,
                "text": post.text,
                "language": post.language,
                "direction": "rtl" if is_rtl(post.language) else "ltr",
                # No post id: an id such as "control-7" would tell an annotator which posts are controls.
                "caption": f"{language_name(post.language)} ({post.language})",
            },
            "labels": [
                {
                    "code": label,
                    "name": label_names.get(label, label),
                    "key": str(i + 1),
                    "color": LABEL_COLORS[label],
                }
                for i, label in enumerate(LABELS)
            ],
            "ack": ack,
            "notice": notice,
            "suggestion": suggestion,
        },
        on_answer_change=on_answer,
    )
