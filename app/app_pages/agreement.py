"""Agreement: Cohen's kappa per annotator pair and Krippendorff's alpha per language, with the posts behind each."""

import pandas as pd
import streamlit as st

from annotator.reports.dashboard import agreement
from app.context import current_project, signed_in_user, transaction
from core.languages import language_name


def render() -> None:
    with transaction(read_only=True) as session:
        project, user = current_project(session), signed_in_user(session)
        pairs, per_language = agreement(session, project, user)
    st.title("Agreement")
    if not pairs:
        st.info(
            "No post has labels from two annotators yet. Set 'annotations wanted per post' above 1 on the "
            "Sampling page, and agreement appears here as posts are labelled twice."
        )
        return
    st.subheader("Cohen's kappa per annotator pair")
    st.dataframe(
        pd.DataFrame(
            [
                {"annotator A": p.first, "annotator B": p.second, "shared posts": p.posts, "kappa": p.kappa}
                for p in pairs
            ]
        ),
        hide_index=True,
        column_config={
            "kappa": st.column_config.ProgressColumn("kappa", min_value=-1.0, max_value=1.0, format="%.3f")
        },
    )
    st.subheader("Krippendorff's alpha per language")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "language": f"{language_name(a.language)} ({a.language})",
                    "posts (n)": a.posts,
                    "alpha": a.alpha,
                }
                for a in per_language
            ]
        ),
        hide_index=True,
        column_config={
            "alpha": st.column_config.ProgressColumn("alpha", min_value=-1.0, max_value=1.0, format="%.3f")
        },
    )
    st.caption(
        "Alpha below 0.667 is usually read as too little agreement to draw conclusions (Krippendorff)."
    )


render()
