"""How a post is shown everywhere in the app: plain text (never HTML or Markdown from the post), right to left
for Arabic, Hebrew, Persian, Urdu and the other right-to-left scripts."""

import html

from core.languages import is_rtl


def post_html(text: str, language: str) -> str:
    """Escaped HTML for st.markdown: `<`, `&` and quotes become entities, and newlines become `&#10;` so that a
    blank line inside a post cannot end the HTML block and let Markdown parse the rest (white-space: pre-wrap still
    shows the line breaks)."""
    direction = "rtl" if is_rtl(language) else "ltr"
    align = "right" if direction == "rtl" else "left"
    return (
        f'<div class="lingualoop-post" dir="{direction}" lang="{html.escape(language)}" '
        'style="font-size:1.35rem;line-height:1.6;white-space:pre-wrap;padding:1rem 1.2rem;'
        f'border:1px solid rgba(128,128,128,.35);border-radius:.6rem;text-align:{align}">{_escaped(text)}</div>'
    )


def _escaped(text: str) -> str:
    return html.escape(text).replace("\r\n", "&#10;").replace("\n", "&#10;").replace("\r", "&#10;")
