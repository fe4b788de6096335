"""Findings: the share of pro / anti / neutral / unrelated posts per language (or metadata column), counted from
a model version's probabilities and corrected with that version's own errors on the eval split, with bootstrap
95% intervals (annotator.reports.findings; docs/prevalence.md)."""

import csv
import io
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from annotator.errors import LingualoopError
from annotator.reports.findings import (
    LANGUAGE,
    Findings,
    compute_findings,
    errors_source,
    metadata_columns,
    project_inputs,
    table_rows,
)
from annotator.reports.quantify import DEFAULT_METHOD, METHOD_NAMES, METHODS, MIN_EVAL_POSTS, scoped
from app.components.versions import version_choices, version_picker
from app.context import current_project, show_error, signed_in_user, transaction
from core.labels import LABELS
from core.languages import language_name

SCOPE_TEXT = {"all": "all posts", "related": "posts about immigration"}
RAW = "cc"


def _group_name(findings: Findings, key: tuple[str, ...]) -> str:
    parts = [
        f"{language_name(value)} ({value})" if column == LANGUAGE else value
        for column, value in zip(findings.group_by, key, strict=True)
    ]
    return " · ".join(parts)


def _compute(group_by: list[str], version_id: int, resamples: int, min_eval: int) -> Findings:
    """Read in one transaction, then bootstrap outside it with a progress bar; the result is kept for this
    session until anything it depends on changes (the posts are read again on each rerun to know that)."""
    with transaction(read_only=True) as session:
        inputs = project_inputs(
            session, current_project(session), group_by, by=signed_in_user(session), version_id=version_id
        )
    fingerprint = (inputs.fingerprint(), tuple(group_by), resamples, min_eval)
    cached = st.session_state.get("findings")
    if cached is not None and cached[0] == fingerprint:
        findings: Findings = cached[1]
        return findings
    bar = st.progress(0.0, text="Bootstrapping the intervals ...")

    def show_progress(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Bootstrap resample {done} of {total}")

    findings = compute_findings(
        inputs.counted,
        inputs.evals,
        inputs.version_id,
        group_by,
        resamples=resamples,
        min_eval=min_eval,
        notes=inputs.notes,
        progress=show_progress,
    )
    bar.empty()
    st.session_state["findings"] = (fingerprint, findings)
    return findings


def _long(findings: Findings, scope: str, method: str) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    labels = LABELS if scope == "all" else LABELS[:3]
    for group in findings.groups:
        for m in dict.fromkeys([RAW, method]):
            shares = scoped(group.point[m], scope)
            low, high = group.interval(m, scope)
            for i, label in enumerate(labels):
                rows.append(
                    {
                        "group": _group_name(findings, group.key),
                        "posts": group.posts,
                        "errors": errors_source(group, findings.fallback),
                        "label": label,
                        "estimate": "raw count" if m == RAW else f"corrected ({m})",
                        "share": shares[i],
                        "low": low[i],
                        "high": high[i],
                    }
                )
    return pd.DataFrame(rows)


def _chart(data: pd.DataFrame, labels: list[str], method: str) -> alt.FacetChart:
    """One panel per label: each group's raw and corrected share with its 95% interval."""
    estimates = ["raw count", f"corrected ({method})"]
    base = alt.Chart().encode(
        y=alt.Y("group:N", title=None),
        yOffset=alt.YOffset("estimate:N", sort=estimates),
        color=alt.Color(
            "estimate:N",
            scale=alt.Scale(domain=estimates, range=["#9e9e9e", "#1565c0"]),
            legend=alt.Legend(orient="top", title=None),
        ),
    )
    rules = base.mark_rule(strokeWidth=2).encode(
        x=alt.X("low:Q", title="share", axis=alt.Axis(format="%")), x2="high:Q"
    )
    points = base.mark_point(filled=True, size=60).encode(
        x="share:Q",
        tooltip=[
            "group",
            "label",
            "estimate",
            alt.Tooltip("share:Q", format=".1%"),
            alt.Tooltip("low:Q", format=".1%"),
            alt.Tooltip("high:Q", format=".1%"),
            "posts",
            "errors",
        ],
    )
    return (
        alt.layer(rules, points, data=data)
        .properties(width=300)
        .facet(
            facet=alt.Facet("label:N", sort=labels, title=None, header=alt.Header(labelFontWeight="bold")),
            columns=2,
        )
    )


def _table(data: pd.DataFrame, method: str) -> pd.DataFrame:
    data = data.assign(
        cell=[
            f"{s:.1%} [{lo:.1%}, {hi:.1%}]"
            for s, lo, hi in zip(data["share"], data["low"], data["high"], strict=True)
        ]
    )
    wide = data.pivot_table(
        index=["group", "posts", "errors"], columns=["label", "estimate"], values="cell", aggfunc="first"
    )
    wide.columns = [f"{label} · {estimate}" for label, estimate in wide.columns]
    return wide.reset_index()


def _csv(findings: Findings) -> bytes:
    rows = table_rows(findings)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def render() -> None:
    st.title("Findings")
    st.caption(
        "How many posts are pro, anti, neutral or unrelated, per language: counted from the model's labels "
        "(raw), and corrected with the errors the model makes in each language on the eval split. Intervals "
        "are 95% bootstrap intervals over the eval posts and the counted posts."
    )
    with transaction(read_only=True) as session:
        project = current_project(session)
        project_name = project.name
        versions = version_choices(session, project.id)
        columns = metadata_columns(session, project)
    if not versions.names:
        st.info(
            "No model version yet. Label posts and press Retrain (or Quick model): findings count the posts "
            "with a model version and correct the counts with its errors on the eval split."
        )
        return
    left, middle, right = st.columns(3)
    version_id = version_picker(left, versions, "findings_version")
    choices = {LANGUAGE: "Language", **{c: c for c in columns}}
    group_by = middle.multiselect(
        "Group by",
        list(choices),
        default=[LANGUAGE],
        format_func=choices.__getitem__,
        key="findings_group_by",
        help="Language, and metadata columns of the imported posts (for example country or month).",
    )
    method = right.selectbox(
        "Correction",
        [m for m in METHODS if m != RAW],
        index=[m for m in METHODS if m != RAW].index(DEFAULT_METHOD),
        format_func=METHOD_NAMES.__getitem__,
        key="findings_method",
        help="Shown next to the raw counts. docs/prevalence.md says how each works and why EM is the default.",
    )
    scope = st.radio(
        "Shares of", list(SCOPE_TEXT), format_func=SCOPE_TEXT.get, horizontal=True, key="findings_scope"
    )
    with st.expander("Settings"):
        resamples = st.number_input("Bootstrap resamples", 20, 2000, 200, step=20, key="findings_resamples")
        min_eval = st.number_input(
            "Eval posts a language needs for its own error estimate",
            1,
            1000,
            MIN_EVAL_POSTS,
            key="findings_min_eval",
        )
    if not group_by:
        st.info("Choose at least one column to group by.")
        return
    try:
        findings = _compute(list(group_by), int(version_id), int(resamples), int(min_eval))
    except LingualoopError as error:
        show_error(error)
        return
    for note in findings.notes:
        st.warning(note, icon=":material/info:")
    data = _long(findings, scope, method)
    labels = list(LABELS if scope == "all" else LABELS[:3])
    st.altair_chart(_chart(data, labels, method))
    st.subheader("Table")
    st.dataframe(_table(data, method), hide_index=True)
    st.download_button(
        "Download the table (CSV: every method, both scopes)",
        _csv(findings),
        file_name=f"{project_name}-findings-v{findings.version_id}.csv",
        mime="text/csv",
        icon=":material/download:",
        key="findings_download",
    )


render()
