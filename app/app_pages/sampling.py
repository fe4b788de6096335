"""Sampling settings: strategy, languages to favour, annotations wanted per post, random share, and how often
the fast model retrains by itself."""

import streamlit as st

from annotator.dashboard import update_sampling
from annotator.errors import LingualoopError
from annotator.fastmodel import DEFAULT_FAST_EVERY
from annotator.languages import language_name
from annotator.sampling import DEFAULT_CATCH_UP, DEFAULT_QUOTA_MODE, DEFAULT_STRATEGY, QUOTA_MODES, STRATEGIES
from app.context import current_project, show_error, signed_in_user, transaction

EXPLAINED = {
    "random.v1": "Random (a baseline)",
    "least_confidence.v1": "Least confidence: the posts whose best label is least likely",
    "entropy.v1": "Entropy: the posts whose four probabilities are most even",
    "breaking_ties.v1": "Breaking ties: the posts whose two best labels are closest (recommended)",
}


def render() -> None:
    with transaction(read_only=True) as session:
        project = current_project(session)
        settings, languages, overlap = dict(project.sampling or {}), list(project.languages), project.overlap
    st.title("Sampling")
    st.caption(
        "Which posts annotators see next: the current model's least certain posts, with quotas per language "
        "that favour languages where the model is weak or has few labels."
    )
    with st.form("sampling"):
        strategy = st.selectbox(
            "Strategy",
            STRATEGIES,
            index=STRATEGIES.index(settings.get("strategy", DEFAULT_STRATEGY)),
            format_func=lambda name: EXPLAINED[name],
        )
        mode = st.selectbox(
            "Language quotas",
            QUOTA_MODES,
            index=QUOTA_MODES.index(settings.get("quota_mode", DEFAULT_QUOTA_MODE)),
            format_func=lambda m: {
                "catch_up": "Catch up: quotas for languages with few labels, the rest by uncertainty alone",
                "weighted": "Weighted: every batch split over all languages by how weak the model is there",
            }[m],
        )
        target = st.number_input(
            "Catch-up target (labels per language)",
            1,
            10_000,
            value=int(settings.get("catch_up", DEFAULT_CATCH_UP)),
        )
        favour = st.multiselect(
            "Languages to favour",
            languages,
            default=[code for code in settings.get("favour", []) if code in languages],
            format_func=lambda code: f"{language_name(code)} ({code})",
            help="Their share of each batch is doubled.",
        )
        wanted = st.number_input(
            "Annotations wanted per post", 1, 10, value=overlap, help="2 or more measures agreement."
        )
        share = st.slider(
            "Random share of each batch", 0.0, 1.0, float(settings.get("random_share", 0.2)), 0.05
        )
        every = st.number_input(
            "Retrain the fast model every N new labels (0: never)",
            0,
            10_000,
            value=int(settings.get("fast_every", DEFAULT_FAST_EVERY)),
        )
        saved = st.form_submit_button("Save", type="primary")
    if saved:
        try:
            with transaction() as session:
                update_sampling(
                    session,
                    current_project(session),
                    signed_in_user(session),
                    strategy=strategy,
                    favour=favour,
                    overlap=int(wanted),
                    random_share=float(share),
                    fast_every=int(every),
                    quota_mode=mode,
                    catch_up=int(target),
                )
        except LingualoopError as error:
            show_error(error)
        else:
            st.success("Saved: the next batches follow these settings.")


render()
