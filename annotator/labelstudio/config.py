"""What Label Studio shows: a labelling config generated from the label scheme (the four labels on hotkeys 1-4,
the post right to left where its script needs it, its language above it) and the task and prediction payloads."""

import html
from typing import Any
from xml.sax.saxutils import quoteattr

from core.labels import LABELS
from core.languages import is_rtl, language_name

FROM_NAME, TO_NAME = "label", "text"


def label_config(label_names: dict[str, str], guidelines: str = "") -> str:
    """The labelling config: the post as sanitised HTML (so `dir` can be set per post), the language, and one
    single-choice control whose choices are the label codes with the project's display names as hints."""
    choices = "\n".join(
        f'    <Choice value={quoteattr(code)} hint={quoteattr(label_names.get(code, code))} hotkey="{i + 1}"/>'
        for i, code in enumerate(LABELS)
    )
    return f"""<View>
  <Header value="$language"/>
  <HyperText name="{TO_NAME}" value="$html" inline="true"/>
  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" showInLine="true" required="true">
{choices}
  </Choices>
</View>"""


def post_html(text: str, language: str) -> str:
    direction = "rtl" if is_rtl(language) else "ltr"
    return (
        f'<div dir="{direction}" lang="{html.escape(language)}" style="white-space:pre-wrap;font-size:1.2em">'
        f"{html.escape(text)}</div>"
    )


def task_data(item_id: int, external_id: str, text: str, language: str) -> dict[str, Any]:
    return {
        "text": text,
        "html": post_html(text, language),
        "language": f"{language_name(language)} ({language})",
        "lang": language,
        "lingualoop_item": item_id,
        "lingualoop_id": external_id,
    }


def prediction(model_version: str, probabilities: tuple[float, float, float, float]) -> dict[str, Any]:
    """The current model's guess: its most likely label, scored by its confidence, so Label Studio's own
    uncertainty ordering (lowest score first) agrees with ours."""
    best = max(range(len(LABELS)), key=lambda i: probabilities[i])
    return {
        "model_version": model_version,
        "score": round(float(probabilities[best]), 6),
        "result": [
            {
                "from_name": FROM_NAME,
                "to_name": TO_NAME,
                "type": "choices",
                "value": {"choices": [LABELS[best]]},
            }
        ],
    }


def label_of(result: list[dict[str, Any]]) -> str | None:
    """The label code in an annotation's result, or None when it has no single known choice."""
    for region in result or []:
        if region.get("from_name") == FROM_NAME and region.get("type") == "choices":
            chosen = (region.get("value") or {}).get("choices") or []
            if len(chosen) == 1 and chosen[0] in LABELS:
                return str(chosen[0])
    return None


def version_name(version_id: int, backend: str) -> str:
    return f"lingualoop-v{version_id}-{backend}"


def instructions(guideline: str, translations: dict[str, str]) -> str:
    """Label Studio's project instructions (HTML): the project's guideline, then each language's translation
    under the language's name, written in its own direction. Empty when there is no guideline at all."""
    parts = [f'<div style="white-space:pre-wrap">{html.escape(guideline)}</div>'] if guideline.strip() else []
    for code, text in sorted(translations.items()):
        direction = "rtl" if is_rtl(code) else "ltr"
        parts.append(
            f"<h3>{html.escape(language_name(code))} ({html.escape(code)})</h3>"
            f'<div dir="{direction}" lang="{html.escape(code)}" style="white-space:pre-wrap">{html.escape(text)}</div>'
        )
    return "\n".join(parts)
