"""Adjudicate: posts whose annotators disagree; choose the final label."""

import streamlit as st

from annotator.annotation.adjudication import adjudicate
from annotator.errors import LingualoopError
from annotator.reports.dashboard import disagreements
from app.components.post import post_html
from app.context import current_project, show_error, signed_in_user, transaction
from core.labels import LABELS
from core.languages import language_name


def _decide(item_id: int, label: str) -> None:
    try:
        with transaction() as session:
            adjudicate(session, current_project(session), signed_in_user(session), item_id, label)
    except LingualoopError as error:
        st.session_state["adjudicate_error"] = str(error)


def render() -> None:
    with transaction(read_only=True) as session:
        project, user = current_project(session), signed_in_user(session)
        found = disagreements(session, project, user)
        names = project.label_names or {}
    st.title("Adjudicate")
    if message := st.session_state.pop("adjudicate_error", None):
        show_error(LingualoopError(message))
    open_ones = [d for d in found if d.adjudicated is None]
    st.caption(f"{len(open_ones)} disagreement(s) to decide, {len(found) - len(open_ones)} decided.")
    if not found:
        st.info("No disagreements: every post labelled by several annotators got the same label.")
        return
    for d in found[:50]:
        with st.container(border=True):
            st.caption(f"{language_name(d.language)} ({d.language}) · post {d.external_id}")
            st.markdown(post_html(d.text, d.language), unsafe_allow_html=True)
            st.write(", ".join(f"**{who}**: {names.get(label, label)}" for who, label in d.labels.items()))
            if d.suggestion is not None:
                label, probability = d.suggestion
                st.caption(f"The current model says **{names.get(label, label)}** ({probability:.0%}).")
            columns = st.columns(len(LABELS))
            for column, label in zip(columns, LABELS, strict=True):
                chosen = d.adjudicated == label
                column.button(
                    ("✓ " if chosen else "") + label.capitalize(),
                    key=f"adj_{d.item_id}_{label}",
                    on_click=_decide,
                    args=(d.item_id, label),
                    type="primary" if chosen else "secondary",
                    help=names.get(label, label),
                    width="stretch",
                )


render()
