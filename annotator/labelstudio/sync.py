"""Push, pull and sync between a lingualoop project and its Label Studio project.

Push: a sampler batch (so Label Studio gets the posts our sampler wants next) as tasks carrying the current
model's prediction, `score` = its confidence. Pull: every submitted annotation, mapped to our users by e-mail,
stored with source `labelstudio` and the Label Studio annotation id as its external reference, so a second pull
changes nothing; cancelled (skipped) annotations and annotations deleted in Label Studio are not imported. Sync:
pull, then, when a new model version became current, give the open tasks its predictions and make it the Label
Studio project's model version."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from annotator.access import RESEARCHERS, Actor, require_role
from annotator.annotate import Answer, record_answer
from annotator.errors import NotFoundError
from annotator.fastmodel import maybe_request_fast_retrain
from annotator.labelstudio.client import LabelStudioError, connect, load_token, save_token
from annotator.labelstudio.config import label_config, label_of, prediction, task_data, version_name
from annotator.sampling import select_batch
from annotator.users import add_user
from db.models import (
    Annotation,
    AnnotationSource,
    Item,
    LabelStudioLink,
    LabelStudioTask,
    Project,
    QueueEntry,
    Role,
    User,
    utcnow,
)
from db.versions import current_version, probabilities_of

Progress = Callable[[str, int, int], None]
_CHUNK = 1_000


def _no_progress(phase: str, done: int, total: int) -> None:
    return None


def get_link(session: Session, project: Project) -> LabelStudioLink:
    link = session.scalar(select(LabelStudioLink).where(LabelStudioLink.project_id == project.id))
    if link is None:
        raise NotFoundError(
            f"Project '{project.name}' is not connected to Label Studio: run `lingualoop labelstudio connect`."
        )
    return link


def connect_project(
    session: Session, project: Project, url: str, token: str, data_dir: Path, by: Actor
) -> LabelStudioLink:
    """Check the server and the token, save the token (0600 file), and create the Label Studio project with the
    generated config, or find the one this project is linked to already."""
    require_role(by, RESEARCHERS, "connect Label Studio")
    client = connect(url, token)
    save_token(data_dir, token)
    link = session.scalar(select(LabelStudioLink).where(LabelStudioLink.project_id == project.id))
    if link is None:
        link = LabelStudioLink(project_id=project.id, url=url.rstrip("/"))
        session.add(link)
    link.url = url.rstrip("/")
    config = label_config(project.label_names or {}, project.guidelines)
    existing = None
    if link.ls_project_id is not None:
        try:
            existing = client.projects.get(id=link.ls_project_id)
        except Exception:
            existing = None
    if existing is None:
        created = client.projects.create(
            title=f"lingualoop: {project.name}"[:50],
            label_config=config,
            expert_instruction=project.guidelines or "",
            show_instruction=bool(project.guidelines),
            maximum_annotations=project.overlap,
        )
        link.ls_project_id = created.id
    else:
        client.projects.update(
            id=link.ls_project_id, label_config=config, maximum_annotations=project.overlap
        )
    session.flush()
    return link


@dataclass
class PushReport:
    tasks: int
    with_predictions: int


def push(
    session: Session,
    project: Project,
    n: int,
    data_dir: Path,
    *,
    by: Actor,
    progress: Progress = _no_progress,
) -> PushReport:
    """Send a sampler batch of n posts as tasks with the current model's predictions."""
    require_role(by, RESEARCHERS, "push tasks to Label Studio")
    link = get_link(session, project)
    client = connect(link.url, load_token(data_dir))
    batch = select_batch(session, project, n)
    rows = session.execute(
        select(Item.id, Item.external_id, Item.text, Item.language)
        .join(QueueEntry, QueueEntry.item_id == Item.id)
        .where(QueueEntry.batch_id == batch.id)
        .order_by(QueueEntry.rank)
    ).all()
    version = current_version(session, project.id)
    probabilities = probabilities_of(session, version.id, [row[0] for row in rows]) if version else {}
    name = version_name(version.id, version.backend) if version else None
    tasks: list[dict[str, Any]] = []
    for item_id, external_id, text, language in rows:
        task: dict[str, Any] = {"data": task_data(item_id, external_id, text, language)}
        if name and item_id in probabilities:
            task["predictions"] = [prediction(name, probabilities[item_id])]
        tasks.append(task)
    created = 0
    for start in range(0, len(tasks), _CHUNK):
        chunk = tasks[start : start + _CHUNK]
        response = client.projects.import_tasks(id=link.ls_project_id, request=chunk, return_task_ids=True)
        task_ids = list(response.task_ids or [])
        if len(task_ids) != len(chunk):
            raise LabelStudioError(
                f"Label Studio created {len(task_ids)} of {len(chunk)} tasks; nothing recorded."
            )
        session.add_all(
            [
                LabelStudioTask(link_id=link.id, item_id=t["data"]["lingualoop_item"], task_id=task_id)
                for t, task_id in zip(chunk, task_ids, strict=True)
            ]
        )
        created += len(chunk)
        progress("pushing tasks", created, len(tasks))
    if version is not None and any("predictions" in t for t in tasks):
        link.model_version_id = version.id
        client.projects.update(id=link.ls_project_id, model_version=name)
    session.flush()
    return PushReport(created, sum(1 for t in tasks if "predictions" in t))


@dataclass
class PullReport:
    annotations_added: int = 0
    annotations_updated: int = 0
    unchanged: int = 0
    skipped_cancelled: int = 0
    skipped_unknown_user: int = 0
    users_created: int = 0


def _ls_users(client: Any) -> dict[int, str]:
    """Label Studio user id -> e-mail."""
    return {int(u.id): (u.email or "").strip().lower() for u in client.users.list() if u.email}


def pull(
    session: Session,
    project: Project,
    data_dir: Path,
    *,
    create_users: bool = False,
    by: Actor,
    progress: Progress = _no_progress,
) -> PullReport:
    """Import the submitted annotations of the project's tasks; run it as often as you like."""
    require_role(by, RESEARCHERS, "pull annotations from Label Studio")
    link = get_link(session, project)
    client = connect(link.url, load_token(data_dir))
    items = dict(
        session.execute(
            select(LabelStudioTask.task_id, LabelStudioTask.item_id).where(LabelStudioTask.link_id == link.id)
        ).all()
    )
    emails = _ls_users(client)
    ours = {u.email: u for u in session.scalars(select(User).where(User.email.is_not(None)))}
    known = {
        ref: a
        for ref, a in session.execute(
            select(Annotation.external_ref, Annotation)
            .join(Item, Item.id == Annotation.item_id)
            .where(Annotation.source == AnnotationSource.LABELSTUDIO, Item.project_id == project.id)
        ).all()
    }
    report = PullReport()
    seen = 0
    for task in client.tasks.list(project=link.ls_project_id, fields="all", page_size=500):
        seen += 1
        item_id = items.get(int(task.id))
        if item_id is None:
            continue  # a task that was not pushed by us
        for annotation in task.annotations or []:
            _pull_one(
                session, project, item_id, _as_dict(annotation), emails, ours, known, create_users, report, by
            )
        if seen % 500 == 0:
            progress("pulling tasks", seen, len(items))
    progress("pulling tasks", seen, len(items))
    if report.annotations_added or report.annotations_updated:
        maybe_request_fast_retrain(session, project)
    link.last_sync_at = utcnow()
    link.last_sync_message = f"pulled: {report.annotations_added} new, {report.annotations_updated} changed, {report.unchanged} unchanged"
    session.flush()
    return report


def _as_dict(annotation: Any) -> dict[str, Any]:
    return annotation if isinstance(annotation, dict) else dict(annotation.dict())


def _pull_one(
    session: Session,
    project: Project,
    item_id: int,
    annotation: dict[str, Any],
    emails: dict[int, str],
    ours: dict[str | None, User],
    known: dict[str | None, Annotation],
    create_users: bool,
    report: PullReport,
    by: Actor,
) -> None:
    if annotation.get("was_cancelled"):
        report.skipped_cancelled += 1
        return
    label = label_of(annotation.get("result") or [])
    if label is None:
        return
    ref = str(annotation["id"])
    existing = known.get(ref)
    if existing is not None and existing.label == label:
        report.unchanged += 1
        return
    completed_by = annotation.get("completed_by")
    user_id = completed_by.get("id") if isinstance(completed_by, dict) else completed_by
    email = emails.get(int(user_id)) if user_id is not None else None
    user = ours.get(email) if email else None
    if user is None and email and create_users:
        user = add_user(
            session, email.split("@")[0][:60] + f"-ls{user_id}", role=Role.ANNOTATOR, email=email, by=by
        )
        ours[email] = user
        report.users_created += 1
    if user is None:
        report.skipped_unknown_user += 1
        return
    seconds = annotation.get("lead_time")
    stored = record_answer(
        session,
        project,
        user,
        item_id,
        Answer.of_label(label),
        seconds=seconds,
        source=AnnotationSource.LABELSTUDIO,
        queue_fast_retrain=False,
    )
    stored.external_ref = ref
    known[ref] = stored
    if existing is None:
        report.annotations_added += 1
    else:
        report.annotations_updated += 1
    session.flush()


def refresh_predictions(session: Session, project: Project, data_dir: Path) -> int:
    """When a new version is current: give every open task (no annotation yet) its predictions, and make it the
    Label Studio project's model version. Returns the tasks updated."""
    link = get_link(session, project)
    version = current_version(session, project.id)
    if version is None or version.id == link.model_version_id:
        return 0
    client = connect(link.url, load_token(data_dir))
    annotated = set(
        session.scalars(
            select(LabelStudioTask.task_id)
            .join(Annotation, Annotation.item_id == LabelStudioTask.item_id)
            .where(LabelStudioTask.link_id == link.id)
        )
    )
    open_tasks = [
        (task_id, item_id)
        for task_id, item_id in session.execute(
            select(LabelStudioTask.task_id, LabelStudioTask.item_id).where(LabelStudioTask.link_id == link.id)
        )
        if task_id not in annotated
    ]
    name = version_name(version.id, version.backend)
    probabilities = probabilities_of(session, version.id, [item_id for _, item_id in open_tasks])
    payload = [
        {"task": task_id, **prediction(name, probabilities[item_id])}
        for task_id, item_id in open_tasks
        if item_id in probabilities
    ]
    for start in range(0, len(payload), _CHUNK):
        client.projects.import_predictions(id=link.ls_project_id, request=payload[start : start + _CHUNK])
    if payload:  # Label Studio accepts a model version only once some prediction carries it
        client.projects.update(id=link.ls_project_id, model_version=name)
    link.model_version_id = version.id
    session.flush()
    return len(payload)


def sync(session: Session, project: Project, data_dir: Path, *, by: Actor, create_users: bool = False) -> str:
    """Pull, then follow a new current model version. Returns what happened, for the job's message."""
    report = pull(session, project, data_dir, create_users=create_users, by=by)
    refreshed = refresh_predictions(session, project, data_dir)
    message = (
        f"pulled {report.annotations_added} new and {report.annotations_updated} changed annotations"
        + (f"; {refreshed} open tasks got the new model's predictions" if refreshed else "")
    )
    get_link(session, project).last_sync_message = message
    return message


@dataclass(frozen=True)
class LinkStatus:
    url: str
    ls_project_id: int | None
    tasks: int
    annotations_pulled: int
    last_sync_at: str | None
    last_sync_message: str


def link_status(session: Session, project: Project, by: Actor) -> LinkStatus | None:
    """What the Label Studio panel shows; None when the project is not connected."""
    require_role(by, RESEARCHERS, "see the Label Studio connection")
    link = session.scalar(select(LabelStudioLink).where(LabelStudioLink.project_id == project.id))
    if link is None:
        return None
    tasks = session.scalar(select(func.count()).where(LabelStudioTask.link_id == link.id)) or 0
    pulled = (
        session.scalar(
            select(func.count())
            .select_from(Annotation)
            .join(Item, Item.id == Annotation.item_id)
            .where(Item.project_id == project.id, Annotation.source == AnnotationSource.LABELSTUDIO)
        )
        or 0
    )
    when = link.last_sync_at.strftime("%Y-%m-%d %H:%M UTC") if link.last_sync_at else None
    return LinkStatus(link.url, link.ls_project_id, int(tasks), int(pulled), when, link.last_sync_message)
