"""Annotators (researchers): how reliable each annotator is per language (accuracy on control posts, the
reliability model's estimate, speed, agreement, a flag), excluding or including their labels, admitting one who is
qualifying, and the label-quality settings."""

from collections.abc import Callable
from dataclasses import replace

import altair as alt
import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session

from annotator.errors import LingualoopError
from annotator.quality.exclusions import exclude_annotator, include_annotator
from annotator.quality.qualification import admit
from annotator.quality.settings import update_quality
from annotator.reports.annotators import (
    AnnotatorReport,
    AnnotatorRow,
    annotator_report,
    confusion_cells,
    model_votes_text,
)
from app.context import current_project, show_error, signed_in_user, transaction
from core.labels import LABELS
from core.languages import language_name
from core.quality import AGGREGATIONS, QualitySettings
from db.models import Project, User

# Where an annotator already labels the language: nobody to admit. (A comment, not a docstring: Streamlit's magic
# would draw a bare string of a page script on the page.)
OPEN_QUALIFICATION = (None, "not required", "passed", "admitted")
AGGREGATION_TEXT = {
    "reliability": "Reliability model: each post's most probable label, weighing annotators by their estimated "
    "confusion (anchored on the controls)",
    "majority": "Majority vote: the label most annotators gave",
}


def _language(code: str) -> str:
    return f"{language_name(code)} ({code})"


def _controls_text(row: AnnotatorRow) -> str:
    if row.control_accuracy is None or row.control_interval is None:
        return f"not measured yet ({row.control_answers} answers)"
    low, high = row.control_interval
    return f"{row.control_accuracy:.0%} ({low:.0%}-{high:.0%}, {row.control_answers} answers)"


def _table(rows: list[AnnotatorRow], qualification: bool) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "annotator": row.username,
                "answers": row.answers,
                "accuracy on controls (95% interval)": _controls_text(row),
                "estimated accuracy": row.estimated_accuracy,
                "seconds per label": row.median_seconds,
                "agreement with others": row.agreement,
                "shared posts": row.shared_posts,
                "excluded": f"yes: {row.exclusion_note}" if row.excluded else "no",
                **({"qualification": row.qualification or "-"} if qualification else {}),
                "flag": row.flag or "",
            }
            for row in rows
        ]
    )


def _accuracy_chart(rows: list[AnnotatorRow]) -> alt.LayerChart | alt.FacetChart | None:
    """Accuracy on controls per annotator with its 95% interval; annotators not measured yet are left out."""
    measured = [row for row in rows if row.control_interval is not None]
    if not measured:
        return None
    data = pd.DataFrame(
        [
            {
                "annotator": row.username,
                "accuracy": row.control_accuracy,
                "low": row.control_interval[0],
                "high": row.control_interval[1],
                "flagged": "flagged" if row.flag else "not flagged",
            }
            for row in measured
            if row.control_interval is not None
        ]
    )
    base = alt.Chart(data).encode(y=alt.Y("annotator:N", title=None))
    scale = alt.Scale(domain=[0, 1])
    rules = base.mark_rule(strokeWidth=2).encode(
        x=alt.X("low:Q", title="accuracy on controls", scale=scale, axis=alt.Axis(format="%")), x2="high:Q"
    )
    points = base.mark_point(filled=True, size=80).encode(
        x=alt.X("accuracy:Q", scale=scale),
        color=alt.Color(
            "flagged:N",
            scale=alt.Scale(domain=["not flagged", "flagged"], range=["#1565c0", "#c62828"]),
            legend=alt.Legend(orient="top", title=None),
        ),
        tooltip=[
            "annotator:N",
            alt.Tooltip("accuracy:Q", format=".0%"),
            alt.Tooltip("low:Q", format=".0%"),
            alt.Tooltip("high:Q", format=".0%"),
        ],
    )
    return alt.layer(rules, points)


def _confusion_chart(row: AnnotatorRow) -> alt.LayerChart | alt.FacetChart:
    data = pd.DataFrame(confusion_cells(row))
    base = alt.Chart(data).encode(
        x=alt.X("given label:N", sort=list(LABELS)), y=alt.Y("true label:N", sort=list(LABELS))
    )
    cells = base.mark_rect().encode(
        color=alt.Color("share:Q", scale=alt.Scale(domain=[0, 1], scheme="blues"), legend=None)
    )
    text = base.mark_text().encode(
        text=alt.Text("share:Q", format=".0%"),
        color=alt.condition(alt.datum.share > 0.5, alt.value("white"), alt.value("black")),
    )
    return alt.layer(cells, text).properties(width=320, height=260)


def _languages(report: AnnotatorReport) -> None:
    qualification = report.settings.qualification
    for language in report.languages:
        rows = report.in_language(language)
        st.subheader(_language(language))
        for row in rows:
            if row.flag:  # said in words above the table, not only in one of its cells
                st.warning(f"**{row.username}** is far below the others: {row.flag}", icon=":material/flag:")
        st.dataframe(
            _table(rows, qualification),
            hide_index=True,
            column_config={
                name: st.column_config.ProgressColumn(name, min_value=0.0, max_value=1.0, format="percent")
                for name in ("estimated accuracy", "agreement with others")
            }
            | {"seconds per label": st.column_config.NumberColumn(format="%.1f")},
            key=f"annotators_table_{language}",
        )
        chart = _accuracy_chart(rows)
        if chart is not None:
            st.altair_chart(chart)


def _confusion(report: AnnotatorReport) -> None:
    fitted = [row for row in report.rows if row.confusion is not None]
    if not fitted:
        return
    st.subheader("Estimated confusion matrix")
    choice = st.selectbox(
        "Annotator",
        range(len(fitted)),
        format_func=lambda i: f"{fitted[i].username} · {_language(fitted[i].language)}",
        key="annotators_confusion_of",
    )
    st.altair_chart(_confusion_chart(fitted[choice]))
    st.caption(
        "Rows: the label a post really has, as the reliability model estimates it; columns: the label this "
        "annotator gave. A careful annotator's shares sit on the diagonal."
    )


def _act(done: str, call: Callable[[Session, Project, User], object]) -> None:
    """Run one domain call in its own transaction; say what happened or why it was refused."""
    try:
        with transaction() as session:
            call(session, current_project(session), signed_in_user(session))
    except LingualoopError as error:
        show_error(error)
    else:
        st.session_state["annotators_done"] = done
        st.rerun()


def _exclusions(report: AnnotatorReport) -> None:
    names = sorted({row.username for row in report.rows})
    if not names:
        return
    st.subheader("Exclude or include an annotator")
    st.caption(
        "Excluding leaves an annotator's labels out of training and the consensus. Nothing is deleted: including "
        "them again brings their labels back, and the datasheet notes who was excluded and why."
    )
    columns = st.columns([1, 2])
    who = columns[0].selectbox("Annotator", names, key="annotators_who")
    note = columns[1].text_input("Note (why)", key="annotators_note")
    left, right = st.columns(2)
    if left.button("Exclude their labels", key="annotators_exclude", icon=":material/block:"):
        _act(
            f"The labels of {who} are now left out of training and the consensus.",
            lambda session, project, by: exclude_annotator(session, project, by, who, note),
        )
    if right.button("Include their labels again", key="annotators_include", icon=":material/undo:"):
        _act(
            f"The labels of {who} count again.",
            lambda session, project, by: include_annotator(session, project, by, who),
        )


def _admissions(report: AnnotatorReport) -> None:
    if not report.settings.qualification:
        return
    qualifying = sorted(
        {(row.username, row.language) for row in report.rows if row.qualification not in OPEN_QUALIFICATION}
    )
    if not qualifying:
        return
    st.subheader("Admit an annotator")
    st.caption("Let an annotator label a language without passing its qualification round.")
    columns = st.columns([2, 1])
    chosen = columns[0].selectbox(
        "Annotator and language",
        qualifying,
        format_func=lambda pair: f"{pair[0]} · {_language(pair[1])}",
        key="annotators_admit_who",
    )
    if columns[1].button("Admit", key="annotators_admit") and chosen is not None:
        username, language = chosen
        _act(
            f"{username} is admitted to label {_language(language)}.",
            lambda session, project, by: admit(session, project, by, username, language),
        )


def _settings_form(settings: QualitySettings) -> None:
    st.subheader("Label-quality settings")
    with st.form("annotators_settings"):
        in_stream = st.checkbox(
            "Mix control posts into annotators' streams",
            value=settings.controls_in_stream,
            key="annotators_in_stream",
        )
        columns = st.columns(3)
        # No bounds on the rates: the domain layer checks them and says what is wrong.
        start = columns[0].number_input(
            "Control share of the first answers", value=settings.control_rate_start, step=0.05, format="%.2f"
        )
        first = columns[1].number_input(
            "First answers at that share", value=settings.control_start_answers, step=1
        )
        later = columns[2].number_input(
            "Control share after that", value=settings.control_rate, step=0.01, format="%.2f"
        )
        qualification = st.checkbox(
            "New annotators of a language qualify first, on control posts",
            value=settings.qualification,
            key="annotators_qualification",
        )
        round_columns = st.columns(2)
        rounds = round_columns[0].number_input(
            "Controls in a qualification round", value=settings.qualification_controls, step=1
        )
        threshold = round_columns[1].number_input(
            "Share right that passes", value=settings.qualification_threshold, step=0.05, format="%.2f"
        )
        aggregation = st.selectbox(
            "Aggregation",
            AGGREGATIONS,
            index=AGGREGATIONS.index(settings.aggregation) if settings.aggregation in AGGREGATIONS else 0,
            format_func=AGGREGATION_TEXT.__getitem__,
        )
        votes = st.checkbox(
            "Count the fast model's cross-fitted votes as one more voter (reliability model)",
            value=settings.model_votes,
            key="annotators_model_votes",
            help="Each labelled post gets the label a fast model trained without it predicts; the reliability "
            "model weighs that voter by its estimated confusion, like an annotator.",
        )
        saved = st.form_submit_button("Save", type="primary")
    if saved:
        chosen = replace(
            settings,
            controls_in_stream=bool(in_stream),
            control_rate_start=float(start),
            control_start_answers=int(first),
            control_rate=float(later),
            qualification=bool(qualification),
            qualification_controls=int(rounds),
            qualification_threshold=float(threshold),
            aggregation=str(aggregation),
            model_votes=bool(votes),
        )
        _act(
            "Saved: controls, qualification and the consensus follow these settings.",
            lambda session, project, by: update_quality(session, project, by, chosen),
        )


def render() -> None:
    with transaction(read_only=True) as session:
        report = annotator_report(session, current_project(session), signed_in_user(session))
    st.title("Annotators")
    st.caption(
        "How far each annotator's labels can be trusted, per language: their accuracy on control posts (posts "
        "with a known label, mixed into their stream), the reliability model's estimate from all their answers, "
        "their speed and their agreement with the others."
    )
    if done := st.session_state.pop("annotators_done", None):
        st.success(done)
    if not report.rows:
        st.info(
            "No annotator has answered yet. Once annotators label posts (on the Annotate page, in Label Studio, "
            "or with `label__<user>` columns in an import), each one appears here per language."
        )
    elif not report.controls:
        st.info(
            "Mark control posts to measure accuracy: on the Adjudicate page (use as a control), with a Relabel "
            "decision on the Flagged posts page, or with `lingualoop import FILE --controls`. Until then only "
            "the reliability model's estimate and the agreement between annotators are shown."
        )
    if report.rows:
        st.caption(model_votes_text(report))
    _languages(report)
    _confusion(report)
    _exclusions(report)
    _admissions(report)
    _settings_form(report.settings)


render()
