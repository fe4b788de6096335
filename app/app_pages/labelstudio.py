"""Label Studio: connection status, connect, push the next sampler batch, pull annotations, last sync."""

import streamlit as st

from annotator.errors import LingualoopError
from annotator.jobloop import request_sync
from annotator.labelstudio.sync import connect_project, link_status, pull, push
from app.context import current_project, database, show_error, signed_in_user, transaction
from db.settings import masked


def _connect_form(data_dir: object) -> None:
    with st.form("ls_connect"):
        url = st.text_input("Label Studio address", placeholder="http://localhost:8090")
        token = st.text_input("API token (Account & Settings)", type="password")
        if st.form_submit_button("Connect", type="primary"):
            try:
                with transaction(read_only=True) as session:
                    project_id, user = current_project(session).id, signed_in_user(session)
                # Label Studio is called between two short transactions of its own.
                link = connect_project(
                    database().writer, project_id, url, token, database().settings.data_dir, by=user
                )
                st.success(f"Connected: Label Studio project {link.ls_project_id} (token {masked(token)}).")
            except LingualoopError as error:
                show_error(error)


def render() -> None:
    st.title("Label Studio")
    data_dir = database().settings.data_dir
    with transaction(read_only=True) as session:
        status = link_status(session, current_project(session), signed_in_user(session))
    if status is None:
        st.info(
            "Not connected. Start a local server with `lingualoop labelstudio serve` (it prints the address and a "
            "token), or use your own Label Studio, then connect here."
        )
        _connect_form(data_dir)
        return
    columns = st.columns(4)
    columns[0].metric("Label Studio project", status.ls_project_id or "-")
    columns[1].metric("Tasks pushed", f"{status.tasks:,}")
    columns[2].metric("Annotations pulled", f"{status.annotations_pulled:,}")
    columns[3].metric("Last sync", status.last_sync_at or "never")
    st.caption(f"{status.url} · {status.last_sync_message or 'no sync yet'}")
    left, middle, right = st.columns(3)
    n = left.number_input("Posts to push", 1, 10_000, value=50, step=10)
    if left.button("Push the next batch", key="ls_push", type="primary"):
        try:
            with transaction(read_only=True) as session:
                project_id, user = current_project(session).id, signed_in_user(session)
            pushed = push(database().writer, project_id, int(n), data_dir, by=user)
            st.success(
                f"Pushed {pushed.tasks} tasks ({pushed.with_predictions} with the model's prediction)."
            )
        except LingualoopError as error:
            show_error(error)
    if middle.button("Pull annotations now", key="ls_pull"):
        try:
            with transaction(read_only=True) as session:
                project_id, user = current_project(session).id, signed_in_user(session)
            pulled = pull(database().writer, database().reader, project_id, data_dir, by=user)
            st.success(
                f"{pulled.annotations_added} new, {pulled.annotations_updated} changed, {pulled.unchanged} unchanged "
                f"({pulled.skipped_unknown_user} from Label Studio users without an account here)."
            )
        except LingualoopError as error:
            show_error(error)
    if right.button("Sync in the background", key="ls_sync"):
        with transaction() as session:
            job = request_sync(session, current_project(session), signed_in_user(session))
        st.toast(f"Sync queued as job {job.id}; the worker also syncs every minute by itself.")
    with st.expander("Connect again (another server or token)"):
        _connect_form(data_dir)


render()
