"""Export: the labelled corpus as CSV, JSONL or Parquet, and its datasheet."""

import tempfile
from pathlib import Path

import streamlit as st

from annotator.corpus.export import EXPORT_FORMATS, export_project
from annotator.errors import LingualoopError
from app.components.versions import version_choices, version_picker
from app.context import current_project, show_error, signed_in_user, transaction

MIME = {"csv": "text/csv", "jsonl": "application/jsonl", "parquet": "application/vnd.apache.parquet"}


def _version_choice() -> int | None:
    """A ready version to take the probabilities from, the current one first; None when there is none."""
    with transaction(read_only=True) as session:
        choices = version_choices(session, current_project(session).id)
    if not choices.names:
        st.caption("No model version yet: the export will have empty prediction columns.")
        return None
    return version_picker(st, choices, "export_version")


def render() -> None:
    st.title("Export")
    file_format = st.radio("Format", EXPORT_FORMATS, horizontal=True)
    predictions = st.checkbox(
        "Include a model's probabilities",
        value=False,
        help="Every post the version scored gets p_pro ... p_unrelated, its label and confidence; eval posts "
        "too, so you can check the model against your own gold labels.",
    )
    version_id = _version_choice() if predictions else None
    if st.button("Prepare export", type="primary", key="prepare_export"):
        try:
            with (
                tempfile.TemporaryDirectory(prefix="lingualoop-export-") as temporary,
                transaction(read_only=True) as session,
            ):
                folder = Path(temporary)
                project = current_project(session)
                out, sheet = folder / f"{project.name}.{file_format}", folder / f"{project.name}-datasheet.md"
                stats = export_project(
                    session,
                    project,
                    out,
                    file_format=file_format,
                    with_predictions=predictions,
                    version_id=version_id,
                    datasheet=sheet,
                    by=signed_in_user(session),
                )
                # Kept for the downloads in this session; the files on disk go with the folder.
                st.session_state["export_files"] = (
                    (out.name, out.read_bytes()),
                    (sheet.name, sheet.read_text(encoding="utf-8")),
                    stats.rows,
                )
        except LingualoopError as error:
            show_error(error)
            return
    files = st.session_state.get("export_files")
    if not files:
        st.info("Prepare an export, then download the file and its datasheet.")
        return
    (out_name, out_bytes), (sheet_name, sheet_text), rows = files
    st.success(f"{rows:,} posts ready.")
    columns = st.columns(2)
    columns[0].download_button(
        f"Download {out_name}",
        out_bytes,
        file_name=out_name,
        mime=MIME.get(Path(out_name).suffix[1:], "application/octet-stream"),
        key="download_export",
        icon=":material/download:",
    )
    columns[1].download_button(
        f"Download {sheet_name}",
        sheet_text.encode("utf-8"),
        file_name=sheet_name,
        mime="text/markdown",
        key="download_sheet",
        icon=":material/description:",
    )
    with st.expander("Datasheet"):
        st.markdown(sheet_text)


render()
