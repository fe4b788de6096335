"""Retrain: choose the worker's model (automatic, LoRA or the encoder), queue its retrain or a fast-model retrain
(seconds), and watch its progress live."""

import streamlit as st

from annotator.errors import LingualoopError
from annotator.retraining.requests import (
    WORKER_BACKENDS,
    cancel,
    job_timing,
    recent_jobs,
    request_fast_retrain,
    request_retrain,
    set_retrain_backend,
)
from app.context import current_project, show_error, signed_in_user, transaction
from db.models import JobStatus, RetrainChoice, utcnow

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


def _choose_backend() -> None:
    try:
        with transaction() as session:
            set_retrain_backend(
                session,
                current_project(session),
                st.session_state["retrain_backend"],
                by=signed_in_user(session),
            )
    except LingualoopError as error:
        st.session_state["retrain_error"] = str(error)


def _backend_choice() -> None:
    """The model the project's Retrain trains: kept with the project, so the CLI's retrain trains it too."""
    with transaction(read_only=True) as session:
        chosen = current_project(session).retrain_backend
    options = [b.value for b in WORKER_BACKENDS]
    st.radio(
        "Model a Retrain trains",
        options,
        index=options.index(chosen) if chosen in options else 0,
        format_func=lambda name: WORKER_BACKENDS[RetrainChoice(name)],
        key="retrain_backend",
        on_change=_choose_backend,
        help="Automatic lets the worker choose: on a CPU the encoder, which measured better than the 270M LoRA "
        "stand-in on the under-represented languages; on a GPU the study's LoRA model. LoRA follows the study "
        "(incremental rounds). The encoder resumes its previous version too, and trains from e5 on all labels "
        "when asked or once the labels have grown by half; docs/experiment.md compares them.",
    )


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
    _backend_choice()
    columns = st.columns(3)
    columns[0].button(
        "Retrain",
        key="retrain",
        type="primary",
        on_click=_request,
        args=(False,),
        icon=":material/model_training:",
        help="Train the chosen model on the labels so far: it resumes the previous version on the new labels "
        "plus a replay sample of earlier ones (the encoder trains from e5 again once the labels have grown by "
        "half since its last full round).",
    )
    columns[1].button(
        "Retrain from scratch",
        key="retrain_scratch",
        on_click=_request,
        args=(False, True),
        help="Train from the base model on every label instead of resuming the previous version (a new LoRA "
        "adapter, or the encoder's members from e5).",
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
