"""Import: upload a CSV, TSV, JSONL or Parquet file, check the column mapping on a preview, import it."""

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from annotator.corpus.ingest import ColumnMapping, ImportOptions, import_file
from annotator.corpus.readers import read_table
from annotator.errors import ImportValidationError, LingualoopError, RowProblem
from app.context import current_project, show_error, signed_in_user, transaction
from db.models import Split

GUESSES = {
    "text": ("text", "tweet", "post", "content", "body"),
    "id": ("id", "tweet_id", "post_id"),
    "language": ("lang", "language", "lang_code"),
    "label": ("label", "stance", "class"),
}
NONE = "(none)"


def _guess(columns: list[str], role: str) -> str:
    lowered = {c.lower(): c for c in columns}
    return next((lowered[name] for name in GUESSES[role] if name in lowered), NONE)


def _problems(problems: list[RowProblem]) -> None:
    """One row per problem: where in the file, which column, what is wrong."""
    st.dataframe(
        pd.DataFrame(
            [{"where": p.location, "column": p.column or "", "problem": p.message} for p in problems[:1000]]
        ),
        hide_index=True,
    )


def render() -> None:
    # The upload lives in memory (Streamlit keeps it); the reader wants a file, for this run only.
    with tempfile.TemporaryDirectory(prefix="lingualoop-upload-") as folder:
        _render(Path(folder))


def _render(folder: Path) -> None:
    st.title("Import posts")
    upload = st.file_uploader(
        "File", type=["csv", "tsv", "jsonl", "parquet"], help="UTF-8; one post per row."
    )
    if upload is None:
        st.info("Choose a file. Columns: the post text, and optionally an id, a language code and a label.")
        return
    path = folder / Path(upload.name).name
    path.write_bytes(upload.getvalue())
    try:
        table = read_table(path)
    except LingualoopError as error:
        show_error(error)
        return
    st.caption(f"{len(table.rows):,} rows, columns: {', '.join(table.columns)}")
    st.dataframe(pd.DataFrame(table.rows[:5], columns=table.columns), hide_index=True)
    options = [NONE, *table.columns]
    columns = st.columns(4)
    chosen = {
        role: columns[i].selectbox(
            role, options, index=options.index(_guess(table.columns, role)), key=f"map_{role}"
        )
        for i, role in enumerate(GUESSES)
    }
    split = st.radio(
        "Split", ["pool", "eval"], horizontal=True, help="Eval posts are held out to measure the model."
    )
    skip = st.checkbox("Import the valid rows and list the others", value=False)
    controls = st.checkbox(
        "Control posts: the label column is each post's gold answer",
        value=False,
        key="import_controls",
        help="The posts (also those already in the project) become control posts, mixed into annotators' "
        "streams to score them; every row needs a label. Columns label__<user> are that annotator's answers.",
    )
    if st.button("Import", type="primary", key="do_import"):
        mapping = ColumnMapping(**{role: (None if c == NONE else c) for role, c in chosen.items()})
        bar = st.progress(0.0, text="importing")

        def progress(phase: str, done: int, total: int) -> None:
            bar.progress(done / total if total else 1.0, text=f"{phase}: {done:,} of {total:,}")

        try:
            with transaction() as session:
                report = import_file(
                    session,
                    current_project(session),
                    path,
                    mapping=mapping,
                    options=ImportOptions(split=Split(split), skip_invalid=skip, controls=controls),
                    progress=progress,
                    by=signed_in_user(session),
                )
        except ImportValidationError as error:
            bar.empty()
            st.error(
                f"{error.summary} Fix the file, or tick *Import the valid rows and list the others* to import "
                "the rest.",
                icon=":material/error:",
            )
            _problems(error.problems)
            return
        except LingualoopError as error:
            bar.empty()
            show_error(error)
            return
        bar.progress(1.0, text="done")
        marked = f"{report.controls_marked:,} posts are control posts now. " if controls else ""
        st.success(
            f"Imported {report.posts_added:,} posts and {report.labels_added:,} labels. {marked}"
            f"{report.duplicates_in_project:,} rows were already in the project and "
            f"{report.duplicates_in_file:,} repeated a post of the file (counted, not added again); "
            f"{report.rows_skipped:,} rows skipped."
        )
        if report.problems:
            st.warning(f"{len(report.problems):,} rows were skipped:", icon=":material/warning:")
            _problems(report.problems)


render()
