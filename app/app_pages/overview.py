"""Overview: labels per language and label (a heatmap), answers per day per annotator, agreement at a glance."""

import altair as alt
import pandas as pd
import streamlit as st

from annotator.reports.dashboard import agreement, answers_per_day, label_counts
from annotator.reports.status import project_status
from app.context import current_project, signed_in_user, transaction
from core.languages import language_name


def render() -> None:
    with transaction(read_only=True) as session:
        project, user = current_project(session), signed_in_user(session)
        counts = label_counts(session, project, user)
        per_day = answers_per_day(session, project, user)
        status = project_status(session, project)
        _, per_language = agreement(session, project, user)
    st.title(f"{project.name}: overview")
    columns = st.columns(4)
    columns[0].metric("Posts", f"{status.posts:,}")
    columns[1].metric("Labelled", f"{status.labelled:,}")
    columns[2].metric("Languages", len(status.languages))
    columns[3].metric("Model versions", status.model_versions)
    st.subheader("Labels per language")
    if not counts:
        st.info("No labels yet. Annotators label on the Annotate page; labels in an imported file count too.")
    else:
        frame = pd.DataFrame(
            [
                {"language": f"{language_name(lang)} ({lang})", "label": label, "labels": n}
                for lang, by_label in counts.items()
                for label, n in by_label.items()
            ]
        )
        heat = (
            alt.Chart(frame)
            .mark_rect()
            .encode(
                x=alt.X("label:N", sort=list(next(iter(counts.values())))),
                y=alt.Y("language:N"),
                color=alt.Color("labels:Q", scale=alt.Scale(scheme="blues")),
                tooltip=["language", "label", "labels"],
            )
        )
        text = heat.mark_text().encode(text="labels:Q", color=alt.value("black"))
        st.altair_chart(heat + text, width="stretch")
    st.subheader("Answers per day")
    if not per_day:
        st.info("Nobody has answered in the app yet.")
    else:
        days = pd.DataFrame(per_day, columns=["day", "annotator", "answers"])
        st.altair_chart(
            alt.Chart(days)
            .mark_bar()
            .encode(
                x=alt.X("yearmonthdate(day):O", title="day", axis=alt.Axis(labelAngle=0)),
                y="answers:Q",
                color="annotator:N",
                tooltip=[alt.Tooltip("day:T", format="%Y-%m-%d"), "annotator", "answers"],
            ),
            width="stretch",
        )
    if per_language:
        st.subheader("Agreement (Krippendorff's alpha)")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "language": f"{language_name(a.language)} ({a.language})",
                        "posts with 2+ labels": a.posts,
                        "alpha": a.alpha,
                    }
                    for a in per_language
                ]
            ),
            hide_index=True,
        )


render()
