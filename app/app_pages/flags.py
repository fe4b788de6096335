"""Flagged posts: what annotators flagged and why; return a post to the pool, exclude it, or give it its label."""

import streamlit as st

from annotator.annotation.flags import FlaggedPost, list_flagged, review_flag
from annotator.errors import LingualoopError
from app.components.post import post_html
from app.context import current_project, show_error, signed_in_user, transaction
from core.labels import LABELS
from core.languages import language_name
from db.models import FlagDecision

DECISION_TEXT = {
    None: "waiting for review: not served to annotators",
    FlagDecision.RETURNED: "returned to the pool",
    FlagDecision.EXCLUDED: "excluded from the corpus (kept in the export, marked)",
    FlagDecision.RELABELLED: "relabelled",
}


def _review(
    item_id: int, decision: FlagDecision, label_key: str | None = None, control_key: str | None = None
) -> None:
    label = st.session_state.get(label_key) if label_key else None
    as_control = bool(st.session_state.get(control_key)) if control_key else False
    try:
        with transaction() as session:
            review_flag(
                session,
                current_project(session),
                signed_in_user(session),
                item_id,
                decision,
                label=label,
                as_control=as_control,
            )
    except LingualoopError as error:
        st.session_state["flags_error"] = str(error)


def _show(post: FlaggedPost, names: dict[str, str]) -> None:
    with st.container(border=True):
        st.caption(
            f"{language_name(post.language)} ({post.language}) · post {post.external_id} · "
            f"{len(post.flags)} flag(s) · {DECISION_TEXT[post.decision]}"
            + (f" by {post.decided_by}" if post.decided_by else "")
        )
        st.markdown(post_html(post.text, post.language), unsafe_allow_html=True)
        for flag in post.flags:  # plain text: a reason is the annotator's words, never Markdown
            st.text(f"{flag.username}, {flag.at:%Y-%m-%d %H:%M}: {flag.reason}")
        columns = st.columns([1, 1, 2, 1], vertical_alignment="bottom")
        columns[0].button(
            "Return to pool",
            key=f"flags_return_{post.item_id}",
            on_click=_review,
            args=(post.item_id, FlagDecision.RETURNED),
            icon=":material/undo:",
            disabled=post.decision == FlagDecision.RETURNED,
        )
        columns[1].button(
            "Exclude",
            key=f"flags_exclude_{post.item_id}",
            on_click=_review,
            args=(post.item_id, FlagDecision.EXCLUDED),
            icon=":material/block:",
            disabled=post.decision == FlagDecision.EXCLUDED,
        )
        label_key = f"flags_label_{post.item_id}"
        columns[2].selectbox(
            "Label", LABELS, key=label_key, format_func=lambda code: names.get(code, code), index=None
        )
        columns[3].button(
            "Relabel",
            key=f"flags_relabel_{post.item_id}",
            on_click=_review,
            args=(post.item_id, FlagDecision.RELABELLED, label_key, f"flags_control_{post.item_id}"),
            icon=":material/label:",
        )
        st.checkbox(
            "Use as a control post",
            key=f"flags_control_{post.item_id}",
            help="With Relabel: the post also becomes a control post with this label as its gold answer, mixed "
            "into annotators' streams to score them.",
        )


def render() -> None:
    st.title("Flagged posts")
    with transaction(read_only=True) as session:
        project, user = current_project(session), signed_in_user(session)
        flagged = list_flagged(session, project, user)
        names = project.label_names or {}
    if message := st.session_state.pop("flags_error", None):
        show_error(LingualoopError(message))
    pending = [post for post in flagged if post.pending]
    st.caption(
        f"{len(pending)} flagged post(s) waiting for review, {len(flagged) - len(pending)} reviewed. A flagged "
        "post is not served to annotators until you decide; its flags are kept whatever you decide."
    )
    if not flagged:
        st.info(
            "No flagged posts. Annotators flag a post with F and a reason (offensive, wrong language, spam); "
            "it shows up here.",
            icon=":material/flag:",
        )
        return
    show_all = st.toggle("Show reviewed posts too", key="flags_show_all", value=not pending)
    for post in (flagged if show_all else pending)[:100]:
        _show(post, names)


render()
