"""Annotate: one post at a time, four labels on keys 1-4, skip (S), flag with a reason (F), undo (U)."""

import time

import streamlit as st
from sqlalchemy import select

from annotator.annotate import Answer, answers_today, open_posts_for, record_answer, undo_last
from annotator.errors import LingualoopError
from annotator.languages import language_name
from annotator.sampling import current_ready_version
from annotator.serving import next_item
from app.components.post import post_html
from app.context import current_project, show_error, signed_in_user, transaction
from db.labels import LABELS
from db.models import Job, JobKind, JobStatus, Prediction

SHORTCUTS = {label: str(i + 1) for i, label in enumerate(LABELS)}


def _answer(item_id: int, answer: Answer) -> None:
    """A button's callback: runs before the page is drawn again, so the next post appears in the same run."""
    shown = st.session_state.get("shown_at", {}).get(item_id)
    seconds = time.monotonic() - shown if shown is not None else None
    try:
        with transaction() as session:
            record_answer(
                session, current_project(session), signed_in_user(session), item_id, answer, seconds=seconds
            )
    except LingualoopError as error:
        st.session_state["annotate_error"] = str(error)
    st.session_state["flagging"] = False


def _undo() -> None:
    with transaction() as session:
        item = undo_last(session, current_project(session), signed_in_user(session))
    st.session_state["annotate_notice"] = (
        f"Took back your answer for post {item.external_id}." if item else "Nothing to undo."
    )


def _empty_state(retraining: bool, languages: list[str]) -> None:
    st.subheader("Nothing to label right now")
    if retraining:
        st.info(
            "A retrain is running: new posts will be picked by the updated model when it is done.",
            icon=":material/hourglass_top:",
        )
    else:
        where = ", ".join(language_name(code) for code in languages) if languages else "this project"
        st.success(
            f"Every post in {where} that needs a label has one. Thank you! A researcher can import more posts "
            "or widen your languages.",
            icon=":material/task_alt:",
        )


def render() -> None:
    with transaction() as session:
        project = current_project(session)
        user = signed_in_user(session)
        item = next_item(session, project, user)
        done_today = answers_today(session, project, user)
        left = open_posts_for(session, project, user)
        retraining = (
            session.scalar(
                select(Job.id).where(
                    Job.project_id == project.id,
                    Job.kind.in_([JobKind.RETRAIN, JobKind.FAST_RETRAIN]),
                    Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]),
                )
            )
            is not None
        )
        suggestion = None
        if item is not None:
            version = current_ready_version(session, project)
            if version is not None:
                row = session.execute(
                    select(
                        Prediction.p_pro, Prediction.p_anti, Prediction.p_neutral, Prediction.p_unrelated
                    ).where(Prediction.model_version_id == version.id, Prediction.item_id == item.id)
                ).first()
                if row is not None:
                    best = max(range(len(LABELS)), key=lambda i: row[i])
                    suggestion = (LABELS[best], float(row[best]))
        labels = project.label_names or {}
        guidelines = project.guidelines
        languages = list(user.languages)
        post = None if item is None else (item.id, item.external_id, item.text, item.language)

    with st.sidebar:
        st.metric("Answered today", done_today)
        total = done_today + left
        st.progress(done_today / total if total else 1.0, text=f"{left:,} posts left in your languages")
        with st.expander("Guidelines", icon=":material/menu_book:", expanded=False):
            st.markdown(guidelines or "_No guidelines yet: a researcher can add them to the project._")
        st.caption("Keys: 1-4 label, S skip, F flag, U undo")

    if message := st.session_state.pop("annotate_error", None):
        st.error(message)
    if notice := st.session_state.pop("annotate_notice", None):
        st.toast(notice)

    if post is None:
        _empty_state(retraining, languages)
        st.button("Undo last answer", key="undo", shortcut="U", on_click=_undo, icon=":material/undo:")
        return
    item_id, external_id, text, language = post
    st.session_state.setdefault("shown_at", {}).setdefault(item_id, time.monotonic())

    st.caption(f"{language_name(language)} ({language}) · post {external_id}")
    st.markdown(post_html(text, language), unsafe_allow_html=True)
    st.write("")
    columns = st.columns(len(LABELS))
    for column, label in zip(columns, LABELS, strict=True):
        column.button(
            f"{labels.get(label, label)}",
            key=f"label_{label}",
            shortcut=SHORTCUTS[label],
            on_click=_answer,
            args=(item_id, Answer.of_label(label)),
            width="stretch",
            type="primary",
            wrap=True,
        )
    actions = st.columns([1, 1, 1, 3])
    actions[0].button(
        "Skip",
        key="skip",
        shortcut="S",
        on_click=_answer,
        args=(item_id, Answer.skip()),
        icon=":material/skip_next:",
    )
    if actions[1].button("Flag", key="flag", shortcut="F", icon=":material/flag:"):
        st.session_state["flagging"] = True
    actions[2].button("Undo", key="undo", shortcut="U", on_click=_undo, icon=":material/undo:")
    show = actions[3].toggle("Show the model's suggestion", key="show_suggestion", value=False)
    if show:
        st.caption(
            f"Model: {labels.get(suggestion[0], suggestion[0])} ({suggestion[1]:.0%})"
            if suggestion
            else "No model has scored this post yet."
        )
    if st.session_state.get("flagging"):
        with st.form("flag_form", clear_on_submit=True):
            reason = st.text_input("Why flag this post?", placeholder="offensive, wrong language, spam, ...")
            if st.form_submit_button("Flag post", type="primary"):
                try:
                    _answer(item_id, Answer.flag(reason))
                except LingualoopError as error:
                    show_error(error)
                else:
                    st.rerun()


render()
