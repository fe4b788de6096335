"""Models: every version with its evaluation, the learning curve (F1 against labels, a line per backend), per-language
F1 with 95% intervals and n, the bias gap between languages, and the confusion matrix."""

from collections.abc import Mapping
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from annotator.errors import LingualoopError
from annotator.reports.dashboard import version_summaries
from annotator.retraining.requests import current_choice, pin_version
from app.context import current_project, show_error, signed_in_user, transaction
from core.labels import LABELS
from core.languages import language_name


def _pin(version_id: int | None) -> None:
    try:
        with transaction() as session:
            pin_version(session, current_project(session), version_id, by=signed_in_user(session))
    except LingualoopError as error:
        st.session_state["models_error"] = str(error)


def _current_notice(reason: str | None, current: int | None, pinned: int | None, chosen: int | None) -> None:
    """Which version is in use and why, with the control to pin the chosen one or to unpin."""
    if current is not None and reason is not None:
        st.info(
            f"**Version {current} is current**: {reason}. Suggestions, sampling, Label Studio and exports use it.",
            icon=":material/verified:",
        )
    left, right = st.columns(2)
    if chosen is not None and chosen != pinned:
        left.button(
            f"Pin version {chosen}",
            key="pin_version",
            on_click=_pin,
            args=(chosen,),
            help="Keep this version current whatever newer versions score, until you unpin it.",
            icon=":material/push_pin:",
        )
    if pinned is not None:
        right.button(
            f"Unpin version {pinned}",
            key="unpin_version",
            on_click=_pin,
            args=(None,),
            help="Let lingualoop choose again: the newest version unless an older one is better beyond its interval.",
        )


def render() -> None:
    with transaction(read_only=True) as session:
        project = current_project(session)
        summaries = version_summaries(session, project, signed_in_user(session))
        choice = current_choice(session, project)
        reason = choice.reason if choice else None
        pinned = choice.version.id if choice and choice.version.pinned else None
    st.title("Models")
    if error := st.session_state.pop("models_error", None):
        show_error(LingualoopError(error))
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
                "labels": s.labels,
                "trained on": s.trained_on,
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
    plotted = [s for s in evaluated if s.labels is not None]
    if len(plotted) >= 2:
        st.subheader("Learning curve")
        st.caption("Eval F1 against the labels each version knew of, one line per backend.")
        curve = pd.DataFrame(
            [
                {"version": s.id, "backend": s.backend, "labels": s.labels, "metric": m, "F1": getattr(s, f)}
                for s in plotted
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
                x=alt.X("labels:Q", title="labels", axis=alt.Axis(format="d", tickMinStep=1)),
                y=alt.Y("F1:Q", scale=alt.Scale(domain=[0, 1])),
                color=alt.Color("metric:N", title=None),
                strokeDash=alt.StrokeDash("backend:N"),
                detail="backend:N",
                tooltip=["version", "backend", "labels", "metric", alt.Tooltip("F1:Q", format=".3f")],
            ),
            width="stretch",
        )
    choices = {
        f"version {s.id} ({s.backend})" + (" · current" if s.current else ""): s for s in reversed(evaluated)
    }
    if not choices:
        st.info("No version has been evaluated yet: import posts with gold labels as the eval split.")
        return
    names = list(choices)
    opening = next((i for i, s in enumerate(choices.values()) if s.current), 0)
    chosen = choices[st.selectbox("Version", names, index=opening, key="models_version")]
    current = next((s.id for s in summaries if s.current), None)
    _current_notice(reason, current, pinned, chosen.id if chosen.status == "ready" else None)
    if chosen.bias_gap is not None:
        st.metric("Bias gap (best minus worst language, macro-F1)", f"{chosen.bias_gap:.3f}")
    per_language = pd.DataFrame(
        [
            {
                "language": f"{language_name(lang)} ({lang}) · n={m.n}",
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
        base = alt.Chart(per_language).encode(y=alt.Y("language:N", sort="-x", axis=alt.Axis(labelLimit=240)))
        bars = base.mark_bar().encode(
            x=alt.X("macro-F1:Q", scale=alt.Scale(domain=[0, 1])), tooltip=list(per_language)
        )
        rules = base.mark_rule().encode(x="low:Q", x2="high:Q")
        st.altair_chart(bars + rules, width="stretch")
        st.caption("n = eval posts of the language: a score on 5 posts can be 1.00 by luck.")
    _member_weights(chosen.member_weights)
    _calibration(chosen.calibration)
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


def _member_weights(rows: list[dict[str, Any]]) -> None:
    """An ensemble's weights by language, as stacked bars: which member counts where."""
    if not rows:
        return
    st.subheader("Members' weights by language")
    st.caption(
        "Fitted on each language's eval posts and shrunk toward the overall weights (and those toward the members "
        "other than the fast model) by how few posts there are; 'other languages' have no eval labels."
    )
    frame = pd.DataFrame(rows)
    st.altair_chart(
        alt.Chart(frame)
        .mark_bar()
        .encode(
            y=alt.Y("language:N", sort=None, axis=alt.Axis(labelLimit=240)),
            x=alt.X("weight:Q", stack="normalize", title="weight", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("member:N"),
            tooltip=["language", "member", alt.Tooltip("weight:Q", format=".2f")],
        ),
        width="stretch",
    )


def _calibration(report: Mapping[str, Any]) -> None:
    """The version's temperature and its expected calibration error, before and after, per language."""
    if "ece" not in report:
        if report.get("note"):
            st.caption(f"Calibration: {report['note']}; the probabilities are the model's own.")
        return
    st.subheader("Calibration")
    left, middle, right = st.columns(3)
    left.metric(
        "Temperature", f"{report['temperature']:.2f}", help="Probabilities p become softmax(log p / T)."
    )
    middle.metric(
        "Expected calibration error",
        f"{report['ece']:.3f}",
        delta=f"{report['ece'] - report['ece_before']:+.3f} against the raw model",
        delta_color="inverse",
    )
    right.metric("Eval posts", f"{report['fitted_on']} fit / {report['reported_on']} report")
    rows = [
        {"language": f"{language_name(lang)} ({lang}) · n={m['n']}", "probabilities": which, "ECE": m[key]}
        for lang, m in sorted(report.get("languages", {}).items())
        for which, key in (("raw", "ece_before"), ("calibrated", "ece"))
    ]
    if rows:
        st.altair_chart(
            alt.Chart(pd.DataFrame(rows))
            .mark_bar()
            .encode(
                y=alt.Y("language:N", axis=alt.Axis(labelLimit=240)),
                yOffset="probabilities:N",
                x=alt.X("ECE:Q", title="expected calibration error (lower is better)"),
                color=alt.Color("probabilities:N", title=None),
                tooltip=["language", "probabilities", alt.Tooltip("ECE:Q", format=".3f")],
            ),
            width="stretch",
        )
    st.caption(
        "The temperature is fitted on half of the eval posts and the error measured on the other half (n per "
        "language: a bar on a few posts is mostly noise). Every probability this version gives (suggestions, the "
        "sampler's uncertainty, exports, findings) is calibrated."
    )


render()
