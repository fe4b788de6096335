"""Notices: when a retrain or a quick model ends, fails or is cancelled, the researcher hears of it on whatever
page they are (a toast, checked every few seconds)."""

import streamlit as st

from annotator.retraining.requests import jobs_finished_since
from app.context import current_project, signed_in_user, transaction
from db.models import Job, JobStatus, as_utc, utcnow

ICONS = {JobStatus.DONE: ":material/check_circle:", JobStatus.FAILED: ":material/error:"}


def notice_text(job: Job) -> str:
    what = {"retrain": "Retrain", "fast_retrain": "Quick model", "score": "Scoring"}.get(
        job.kind.value, job.kind.value
    )
    if job.status == JobStatus.DONE:
        return f"{what} (job {job.id}) finished: {job.progress_message or 'done'}"
    if job.status == JobStatus.FAILED:
        reason = (job.error or "").strip().splitlines()[-1:] or ["see the Retrain page"]
        return f"{what} (job {job.id}) failed: {reason[0][:200]}"
    return f"{what} (job {job.id}) was {job.status.value}."


@st.fragment(run_every=5.0)
def job_notices() -> None:
    """Toasts for the model jobs that ended since this session last looked (since it began, the first time)."""
    since = st.session_state.setdefault("notices_since", utcnow())
    with transaction(read_only=True) as session:
        ended = jobs_finished_since(session, current_project(session), since, by=signed_in_user(session))
        notices = [
            (notice_text(job), ICONS.get(job.status, ":material/info:"), job.finished_at) for job in ended
        ]
    for text, icon, finished in notices:
        st.toast(text, icon=icon)
        if finished is not None:
            st.session_state["notices_since"] = max(
                as_utc(st.session_state["notices_since"]), as_utc(finished)
            )
