"""Retrain: queue a LoRA retrain (the worker) or a fast-model retrain (seconds), and watch its progress live."""

import streamlit as st

from annotator.errors import LingualoopError
from annotator.fastmodel import request_fast_retrain
from annotator.models import cancel, job_timing, recent_jobs, request_retrain
from app.context import current_project, show_error, signed_in_user, transaction
from db.models import JobStatus, utcnow

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


def _request(fast: bool, from_scratch: bool = False) -> None:
    try:
        with transaction() as session:
            project, user = current_project(session), signed_in_user(session)
            job = (
                request_fast_retrain(session, project, by=user)
                if fast
                else request_retrain(session, project, from_scratch=from_scratch, by=user)
            )
            st.session_state["retrain_notice"] = f"Job {job.id} queued: a worker picks it up."
    except LingualoopError as error:
        st.session_state["retrain_error"] = str(error)


def _cancel(job_id: int) -> None:
    with transaction() as session:
        cancel(session, current_project(session), job_id, signed_in_user(session))


@st.fragment(run_every=1.0)
def jobs_panel() -> None:
    """Redrawn every second: the progress bars follow the worker's heartbeats."""
    with transaction(read_only=True) as session:
        now = utcnow()
        jobs = [
            (j.id, j.kind.value, j.status, j.progress, j.progress_message, j.error, job_timing(j, now))
            for j in recent_jobs(session, current_project(session), signed_in_user(session))
        ]
    if not jobs:
        st.info(
            "No retrain yet. Press a button above; `lingualoop worker` (started by `lingualoop demo`) runs it."
        )
        return
    for job_id, kind, status, progress, message, error, timing in jobs:
        with st.container(border=True):
            left, right = st.columns([5, 1])
            text = f"Job {job_id} · {kind} · {status.value}" + (f" · {message}" if message else "")
            left.progress(min(1.0, max(0.0, progress)), text=text)
            left.caption(timing + " (UTC)")
            if status in ACTIVE:
                right.button("Cancel", key=f"cancel_{job_id}", on_click=_cancel, args=(job_id,))
            elif status == JobStatus.FAILED and error:
                with left.expander("What went wrong"):
                    st.code(error[-3000:])


def render() -> None:
    st.title("Retrain")
    if message := st.session_state.pop("retrain_error", None):
        show_error(LingualoopError(message))
    if notice := st.session_state.pop("retrain_notice", None):
        st.toast(notice)
    columns = st.columns(3)
    columns[0].button(
        "Retrain",
        key="retrain",
        type="primary",
        on_click=_request,
        args=(False,),
        icon=":material/model_training:",
        help="Fine-tune the LoRA model on the labels so far (incremental: new labels plus a replay sample).",
    )
    columns[1].button(
        "Retrain from scratch",
        key="retrain_scratch",
        on_click=_request,
        args=(False, True),
        help="Start a new adapter instead of resuming the current one.",
    )
    columns[2].button(
        "Quick model",
        key="retrain_fast",
        on_click=_request,
        args=(True,),
        icon=":material/bolt:",
        help="Embeddings + logistic regression: ready in seconds, so sampling never waits for the LLM.",
    )
    st.subheader("Jobs")
    jobs_panel()


render()
