"""Annotate: one post at a time, four labels on keys 1-4, skip (S), flag with a reason (F), undo (U).

The post and its keys live in the answer panel (app/components/answer_panel.py), which sends the post and lease
that were on screen with every answer; this page records it for that post only and draws the next one. Above the
post, the annotator's qualification in each language (when the project asks for one): a failed round lists their
mistakes beside the gold label and the guideline, with Try again. Nothing on the page tells a control post from a
corpus post: the standing depends on the annotator, never on the post shown."""

import streamlit as st

from annotator.annotation.annotate import (
    answer_shown,
    answers_today,
    model_suggestion,
    open_posts_for,
    undo_last,
)
from annotator.annotation.serving import lease_of, next_item
from annotator.errors import LingualoopError
from annotator.quality.guidelines import ShownGuideline, guideline_for
from annotator.quality.qualification import Standing, standings, try_again
from annotator.reports.dashboard import MIN_SHARED, OwnAgreement, own_agreement
from annotator.retraining.requests import retrain_in_progress
from annotator.sampling.sampler import LanguageNeed, language_needs
from app.components.answer_panel import PanelPost, answer_panel, parse_event
from app.components.post import post_html
from app.context import current_project, signed_in_user, transaction
from core.languages import language_name
from db.models import Item, Project, User

PANEL = "annotate_panel"


def _on_answer() -> None:
    """The panel's callback: runs before the page is drawn again, so the next post appears in the same run. The
    answer's id goes back to the panel as `ack` whatever happened, which lets it take keys again."""
    payload = st.session_state[PANEL]["answer"]
    if payload is None:
        return
    answer_id = payload.get("id") if isinstance(payload, dict) else None
    if answer_id is not None and answer_id == st.session_state.get("annotate_ack"):
        return  # handled already
    st.session_state["annotate_ack"] = answer_id
    notice = None
    try:
        event = parse_event(payload)
        with transaction() as session:
            project, user = current_project(session), signed_in_user(session)
            if event.shown is None or event.answer is None:
                notice = _undo_notice(undo_last(session, project, user))
            else:
                answer_shown(session, project, user, event.shown, event.answer, seconds=event.seconds)
    except LingualoopError as error:
        notice = str(error)
    st.session_state["annotate_notice"] = notice


def _undo() -> None:
    try:
        with transaction() as session:
            item = undo_last(session, current_project(session), signed_in_user(session))
            st.session_state["annotate_notice"] = _undo_notice(item)
    except LingualoopError as error:
        st.session_state["annotate_notice"] = str(error)


def _undo_notice(item: Item | None) -> str:
    if item is None:
        return "Nothing to undo."
    excerpt = " ".join(item.text.split())
    excerpt = excerpt if len(excerpt) <= 60 else excerpt[:59] + "…"
    return f"Took back your answer for “{excerpt}”."  # the text, not the id, which could give a control away


def _try_again(language: str) -> None:
    try:
        with transaction() as session:
            try_again(session, current_project(session), signed_in_user(session), language)
        st.session_state["annotate_notice"] = f"A new {language_name(language)} round starts with new posts."
    except LingualoopError as error:
        st.session_state["annotate_notice"] = str(error)


def _guideline_caption(guideline: ShownGuideline) -> str:
    """Which guideline this is: its language and version, so an annotator can say what they followed."""
    which = (
        f"{language_name(guideline.language)} guideline" if guideline.language else "The project's guideline"
    )
    return f"{which}, version {guideline.version}" if guideline.version else f"{which} (not versioned yet)"


def _guideline(guideline: ShownGuideline) -> None:
    st.caption(_guideline_caption(guideline))
    st.markdown(guideline.text or "_No guidelines yet: a researcher can add them to the project._")


def _failed_round(found: Standing, guideline: ShownGuideline, labels: dict[str, str]) -> None:
    """A failed round: each mistake (the post, their answer, the gold label) beside the guideline, and Try again."""
    with st.container(border=True, key=f"annotate_failed_{found.language}"):
        st.warning(found.message(), icon=":material/school:")
        mistakes, guide = st.columns([3, 2])
        with mistakes:
            st.markdown(f"**Your mistakes ({len(found.mistakes)})**")
            for mistake in found.mistakes:
                st.markdown(post_html(mistake.text, found.language), unsafe_allow_html=True)
                st.markdown(
                    f"Your answer: **{labels.get(mistake.given, mistake.given) or 'none'}** · the right answer: "
                    f"**{labels.get(mistake.gold, mistake.gold)}**"
                )
        with guide:
            _guideline(guideline)
        st.button(
            "Try again",
            key=f"annotate_try_again_{found.language}",
            on_click=_try_again,
            args=(found.language,),
            icon=":material/replay:",
            disabled=found.controls_left == 0,
        )


def _standings(found: list[Standing], guidelines: dict[str, ShownGuideline], labels: dict[str, str]) -> None:
    """Where the annotator stands, per language that asks for a qualification (nothing when none does)."""
    for standing in found:
        if standing.state == "not required":
            continue
        if standing.state == "failed":
            _failed_round(standing, guidelines[standing.language], labels)
        elif standing.may_label:
            st.caption(standing.message())
        else:
            st.info(standing.message(), icon=":material/school:")


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


@st.cache_data(ttl=60, show_spinner=False)
def _sidebar_facts(project_id: int, user_id: int) -> tuple[list[LanguageNeed], OwnAgreement]:
    """Read at most once a minute: the annotate page redraws after every answer and must stay quick."""
    with transaction(read_only=True) as session:
        project, user = session.get(Project, project_id), session.get(User, user_id)
        assert project is not None and user is not None
        return language_needs(session, project, list(user.languages)), own_agreement(session, project, user)


def _bar(done: int, target: int, width: int = 10) -> str:
    filled = min(width, round(width * done / target)) if target else width
    return "▰" * filled + "▱" * (width - filled)


def _where_labels_help(needs: list[LanguageNeed]) -> str:
    """The sampler's reasons, per language of the annotator: why some languages' posts come first."""
    lines = [
        f"- {language_name(need.language)} {_bar(need.labels, need.target)} {need.labels} of {need.target} labels"
        + (f" · the model's F1 there: {need.f1:.2f}" if need.f1 is not None else " · not evaluated yet")
        for need in needs
    ]
    return (
        "**Where your labels help most**\n\n"
        + "\n".join(lines or ["No posts in your languages yet."])
        + "\n\nPosts come first in the languages at the top: where the model is weakest and labels are fewest "
        "(a few dozen labels per language fix much of a model's bias)."
    )


def _your_agreement(agreement: OwnAgreement) -> str:
    if agreement.kappa is None:
        text = (
            f"Shown once you share {MIN_SHARED} posts with other annotators (now {agreement.shared_posts})."
        )
    else:
        text = (
            f"Cohen's kappa with the others: **{agreement.kappa:.2f}** (1 = always the same label, 0 = chance), "
            f"on {agreement.shared_posts} posts you labelled with someone else."
        )
    if agreement.adjudicated_posts:
        text += (
            f" A researcher's final label matched yours on {agreement.matched_adjudications} of "
            f"{agreement.adjudicated_posts} decided posts."
        )
    return "**Your agreement**\n\n" + text


def render() -> None:
    show_suggestion = st.session_state.get("show_suggestion", False)
    with transaction() as session:
        project = current_project(session)
        user = signed_in_user(session)
        item = next_item(session, project, user)
        done_today = answers_today(session, project, user)
        left = open_posts_for(session, project, user)
        retraining = item is None and retrain_in_progress(session, project)
        suggestion = (
            model_suggestion(session, project, item.id) if item is not None and show_suggestion else None
        )
        labels = project.label_names or {}
        languages = list(user.languages)
        found = standings(session, project, user)
        failed = {
            s.language: guideline_for(session, project, s.language) for s in found if s.state == "failed"
        }
        # The post's language version (the one recorded with the answer); without a post, the annotator's first.
        shown_language = item.language if item is not None else (languages[0] if languages else "")
        guideline = guideline_for(session, project, shown_language)
        project_id, user_id = project.id, user.id
        post = (
            None
            if item is None
            else PanelPost(item.id, lease_of(session, item, user), item.external_id, item.text, item.language)
        )

    with st.sidebar:
        st.metric("Answered today", done_today)
        total = done_today + left
        st.progress(done_today / total if total else 1.0, text=f"{left:,} posts left in your languages")
        needs, agreement = _sidebar_facts(project_id, user_id)
        # One expander and one Markdown element: the page redraws after every answer, and each element costs.
        with st.expander("Your languages and agreement", icon=":material/translate:", expanded=False):
            st.markdown(_where_labels_help(needs) + "\n\n" + _your_agreement(agreement))
        with st.expander("Guidelines", icon=":material/menu_book:", expanded=False):
            _guideline(guideline)
        st.caption("Keys: 1-4 label, S skip, F flag (Enter sends, Esc cancels), U undo")

    notice = st.session_state.pop("annotate_notice", None)
    _standings(found, failed, labels)
    if post is None:
        if notice:
            st.toast(notice)
        if all(standing.may_label for standing in found):  # else the standing above says why nothing comes
            _empty_state(retraining, languages)
        st.button("Undo last answer", key="undo", shortcut="U", on_click=_undo, icon=":material/undo:")
        return
    if show_suggestion:
        suggestion_text = (
            f"Model: {labels.get(suggestion[0], suggestion[0])} ({suggestion[1]:.0%})"
            if suggestion
            else "No model has scored this post yet."
        )
    else:
        suggestion_text = None
    answer_panel(
        key=PANEL,
        post=post,
        label_names=labels,
        ack=st.session_state.get("annotate_ack"),
        notice=notice,
        suggestion=suggestion_text,
        on_answer=_on_answer,
    )
    st.toggle("Show the model's suggestion", key="show_suggestion", value=False)


render()
