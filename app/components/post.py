"""How a post is shown everywhere in the app: plain text (never HTML or Markdown from the post), right to left
for Arabic, Hebrew, Persian, Urdu and the other right-to-left scripts."""

import html

from annotator.languages import is_rtl


def post_html(text: str, language: str) -> str:
    direction = "rtl" if is_rtl(language) else "ltr"
    align = "right" if direction == "rtl" else "left"
    return (
        f'<div class="lingualoop-post" dir="{direction}" lang="{html.escape(language)}" '
        'style="font-size:1.35rem;line-height:1.6;white-space:pre-wrap;padding:1rem 1.2rem;'
        f'border:1px solid rgba(128,128,128,.35);border-radius:.6rem;text-align:{align}">{html.escape(text)}</div>'
    )
