"""Sampling settings: strategy, languages to favour, annotations wanted per post, random share, and how often
the fast model retrains by itself; below them, the guidelines annotators read (app/components/guidelines.py)."""

from dataclasses import replace

import streamlit as st

from annotator.errors import LingualoopError
from annotator.sampling.settings import QUOTA_MODES, SamplingSettings, update_sampling
from annotator.sampling.strategies import REGISTRY, STRATEGIES
from app.components.guidelines import guidelines_section
from app.context import current_project, show_error, signed_in_user, transaction
from core.languages import language_name

QUOTA_MODE_TEXT = {
    "catch_up": "Catch up: quotas for languages with few labels, the rest by uncertainty alone",
    "weighted": "Weighted: every batch split over all languages by how weak the model is there",
}


def render() -> None:
    with transaction(read_only=True) as session:
        project = current_project(session)
        settings, languages, overlap = SamplingSettings.of(project), list(project.languages), project.overlap
    st.title("Sampling")
    st.caption(
        "Which posts annotators see next: the current model's least certain posts, with quotas per language "
        "that favour languages where the model is weak or has few labels."
    )
    with st.form("sampling"):
        strategy = st.selectbox(
            "Strategy",
            STRATEGIES,
            index=STRATEGIES.index(settings.strategy),
            format_func=lambda name: REGISTRY[name].label,
        )
        mode = st.selectbox(
            "Language quotas",
            QUOTA_MODES,
            index=QUOTA_MODES.index(settings.quota_mode),
            format_func=QUOTA_MODE_TEXT.__getitem__,
            help="In replayed annotation both modes raise the other languages alike (stance +0.08 at 400 labels "
            "over uncertainty alone); catch up costs English and Spanish less once languages have their first "
            "labels. Weighted keeps every language in every batch: choose it when each language's own figures "
            "matter more than overall accuracy.",
        )
        target = st.number_input("Catch-up target (labels per language)", 1, 10_000, value=settings.catch_up)
        favour = st.multiselect(
            "Languages to favour",
            languages,
            default=[code for code in settings.favour if code in languages],
            format_func=lambda code: f"{language_name(code)} ({code})",
            help="Their share of each batch is doubled.",
        )
        wanted = st.number_input(
            "Annotations wanted per post", 1, 10, value=overlap, help="2 or more measures agreement."
        )
        share = st.slider("Random share of each batch", 0.0, 1.0, settings.random_share, 0.05)
        every = st.number_input(
            "Retrain the fast model every N new labels (0: never)", 0, 10_000, value=settings.fast_every
        )
        saved = st.form_submit_button("Save", type="primary")
    if saved:
        chosen = replace(
            settings,
            strategy=strategy,
            quota_mode=mode,
            catch_up=int(target),
            random_share=float(share),
            favour=tuple(favour),
            fast_every=int(every),
        )
        try:
            with transaction() as session:
                update_sampling(
                    session, current_project(session), signed_in_user(session), chosen, overlap=int(wanted)
                )
        except LingualoopError as error:
            show_error(error)
        else:
            st.success("Saved: the next batches follow these settings.")
    guidelines_section()


render()
