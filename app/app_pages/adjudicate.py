"""Adjudicate: posts whose annotators disagree; choose the final label (and, if it is clear-cut, keep the post
as a control); the project's control posts, to unmark."""

import streamlit as st

from annotator.annotation.adjudication import adjudicate
from annotator.errors import LingualoopError
from annotator.quality.controls import ControlRow, list_controls, mark_control, unmark_control
from annotator.reports.dashboard import disagreements
from app.components.post import post_html
from app.context import current_project, show_error, signed_in_user, transaction
from core.labels import LABELS
from core.languages import language_name
from db.models import ControlSource


def _decide(item_id: int, label: str) -> None:
    try:
        with transaction() as session:
            project, user = current_project(session), signed_in_user(session)
            adjudicate(session, project, user, item_id, label)
            if st.session_state.get(f"adj_control_{item_id}"):
                mark_control(session, project, user, item_id, label, source=ControlSource.ADJUDICATION)
    except LingualoopError as error:
        st.session_state["adjudicate_error"] = str(error)


def _unmark(item_id: int) -> None:
    try:
        with transaction() as session:
            unmark_control(session, current_project(session), signed_in_user(session), item_id)
    except LingualoopError as error:
        st.session_state["adjudicate_error"] = str(error)


def _controls(controls: list[ControlRow], names: dict[str, str]) -> None:
    """The active control posts, each with how often annotators got it right and a button to unmark it."""
    with st.expander(f"Control posts ({len(controls)})", icon=":material/verified:"):
        if not controls:
            st.caption(
                "No control posts yet: tick *Use as a control post* before deciding a clear-cut post, or import "
                "posts with their gold labels as controls."
            )
        for control in controls[:200]:
            right = (
                f"{control.right} of {control.answers} answers right"
                if control.answers
                else "not answered yet"
            )
            text, button = st.columns([5, 1], vertical_alignment="center")
            text.text(
                f"{control.language} · {names.get(control.label, control.label)} ({control.source}) · {right}\n"
                f"{control.text[:200]}"
            )
            button.button(
                "Unmark", key=f"adj_unmark_{control.item_id}", on_click=_unmark, args=(control.item_id,)
            )


def render() -> None:
    with transaction(read_only=True) as session:
        project, user = current_project(session), signed_in_user(session)
        found = disagreements(session, project, user)
        controls = list_controls(session, project)
        names = project.label_names or {}
    st.title("Adjudicate")
    if message := st.session_state.pop("adjudicate_error", None):
        show_error(LingualoopError(message))
    open_ones = [d for d in found if d.adjudicated is None]
    st.caption(f"{len(open_ones)} disagreement(s) to decide, {len(found) - len(open_ones)} decided.")
    _controls(controls, names)
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
            st.checkbox(
                "Use as a control post",
                key=f"adj_control_{d.item_id}",
                help="The label you choose becomes the post's gold answer: it is mixed into annotators' streams "
                "to score them.",
            )
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
