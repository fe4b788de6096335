"""Models: every version with its evaluation, the learning curve across versions, per-language F1 with 95%
intervals, the bias gap between languages, and the confusion matrix."""

import altair as alt
import pandas as pd
import streamlit as st

from annotator.dashboard import version_summaries
from annotator.languages import language_name
from app.context import current_project, signed_in_user, transaction
from db.labels import LABELS


def render() -> None:
    with transaction(read_only=True) as session:
        summaries = version_summaries(session, current_project(session), signed_in_user(session))
    st.title("Models")
    if not summaries:
        st.info(
            "No model versions yet. Label some posts, then press Retrain (or Quick model) on the Retrain page."
        )
        return
    table = pd.DataFrame(
        [
            {
                "version": s.id,
                "backend": s.backend,
                "status": s.status,
                "current": "✓" if s.current else "",
                "labels": s.trained_on,
                "macro-F1": s.macro_f1,
                "95% CI": f"[{s.interval[0]:.3f}, {s.interval[1]:.3f}]" if s.interval else "",
                "topic F1": s.topic_f1,
                "stance F1": s.stance_f1,
                "bias gap": s.bias_gap,
                "created": s.created,
            }
            for s in reversed(summaries)
        ]
    )
    st.dataframe(table, hide_index=True)
    evaluated = [s for s in summaries if s.macro_f1 is not None]
    if len(evaluated) >= 2:
        st.subheader("Learning curve")
        curve = pd.DataFrame(
            [
                {"version": f"v{s.id} {s.backend}", "order": s.id, "metric": m, "F1": getattr(s, f)}
                for s in evaluated
                for m, f in (
                    ("4-class macro-F1", "macro_f1"),
                    ("topic F1", "topic_f1"),
                    ("stance F1", "stance_f1"),
                )
            ]
        )
        st.altair_chart(
            alt.Chart(curve)
            .mark_line(point=True)
            .encode(
                x=alt.X("version:O", sort=alt.SortField("order"), title="version (backend)"),
                y=alt.Y("F1:Q", scale=alt.Scale(domain=[0, 1])),
                color="metric:N",
            ),
            width="stretch",
        )
    choices = {
        f"version {s.id} ({s.backend})" + (" · current" if s.current else ""): s for s in reversed(evaluated)
    }
    if not choices:
        st.info("No version has been evaluated yet: import posts with gold labels as the eval split.")
        return
    chosen = choices[st.selectbox("Version", list(choices))]
    if chosen.bias_gap is not None:
        st.metric("Bias gap (best minus worst language, macro-F1)", f"{chosen.bias_gap:.3f}")
    per_language = pd.DataFrame(
        [
            {
                "language": f"{language_name(lang)} ({lang})",
                "macro-F1": m.macro_f1,
                "low": m.interval[0] if m.interval else None,
                "high": m.interval[1] if m.interval else None,
                "n": m.n,
                "stance F1": m.stance_f1,
            }
            for lang, m in sorted(chosen.per_language.items())
        ]
    )
    if not per_language.empty:
        st.subheader("Per language (95% bootstrap interval)")
        base = alt.Chart(per_language).encode(y=alt.Y("language:N", sort="-x"))
        bars = base.mark_bar().encode(
            x=alt.X("macro-F1:Q", scale=alt.Scale(domain=[0, 1])), tooltip=list(per_language)
        )
        rules = base.mark_rule().encode(x="low:Q", x2="high:Q")
        st.altair_chart(bars + rules, width="stretch")
    if chosen.confusion:
        st.subheader("Confusion matrix (rows: gold, columns: predicted)")
        confusion = pd.DataFrame(
            [
                {"gold": g, "predicted": p, "posts": chosen.confusion[i][j]}
                for i, g in enumerate(LABELS)
                for j, p in enumerate(LABELS)
            ]
        )
        heat = (
            alt.Chart(confusion)
            .mark_rect()
            .encode(
                x=alt.X("predicted:N", sort=list(LABELS)),
                y=alt.Y("gold:N", sort=list(LABELS)),
                color=alt.Color("posts:Q", scale=alt.Scale(scheme="greens")),
                tooltip=["gold", "predicted", "posts"],
            )
        )
        st.altair_chart(
            heat + heat.mark_text().encode(text="posts:Q", color=alt.value("black")), width="stretch"
        )


render()
