"""The Guidelines section of a researcher page: edit the project's guideline and each language's translation (every
save a new version, annotator/quality/guidelines.py) and see their history."""

import pandas as pd
import streamlit as st

from annotator.errors import LingualoopError
from annotator.quality.guidelines import guideline_for, guideline_history, translations
from annotator.quality.guidelines import set_guideline as save_guideline
from app.context import current_project, show_error, signed_in_user, transaction
from core.languages import language_name

OWN = ""
"""The project's own guideline, in the language picker."""


def _choice_name(code: str) -> str:
    return (
        "The project's guideline (every language)"
        if code == OWN
        else f"{language_name(code)} ({code}) translation"
    )


def guidelines_section() -> None:
    with transaction(read_only=True) as session:
        project = current_project(session)
        languages = [OWN, *sorted(project.languages)]
        own = guideline_for(session, project, OWN).text
        translated = {code: shown.text for code, shown in translations(session, project).items()}
    st.subheader("Guidelines")
    st.caption(
        "What annotators read beside each post: the project's guideline, or the translation for the post's "
        "language where there is one (Label Studio's instructions carry them all). Every save is a new version, "
        "and each answer stores the version its annotator was shown. Saving an empty translation withdraws it."
    )
    code = st.selectbox("Guideline", languages, format_func=_choice_name, key="guidelines-language")
    with st.form("guidelines"):
        text = st.text_area(
            "Text (Markdown)",
            value=own if code == OWN else translated.get(code, ""),
            height=220,
            key=f"guidelines-text-{code or 'project'}",
        )
        saved = st.form_submit_button("Save as a new version")
    if saved:
        try:
            with transaction() as session:
                version = save_guideline(
                    session, current_project(session), signed_in_user(session), text, code
                )
                number = version.version
        except LingualoopError as error:
            show_error(error)
        else:
            which = (
                "the project's guideline"
                if code == OWN
                else f"the {language_name(code)} ({code}) translation"
            )
            st.success(f"Saved version {number} of {which}.")
    with transaction(read_only=True) as session:
        history = guideline_history(session, current_project(session), code)
    if history:
        with st.expander(f"Versions ({len(history)})"):
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "version": v.version,
                            "by": v.author,
                            "saved": v.created_at.strftime("%Y-%m-%d %H:%M"),
                            "text": v.text if len(v.text) <= 200 else v.text[:200] + "…",
                        }
                        for v in history
                    ]
                ),
                hide_index=True,
            )
