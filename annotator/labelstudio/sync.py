"""Push, pull and sync between a lingualoop project and its Label Studio project.

Push: a sampler batch (so Label Studio gets the posts our sampler wants next) as tasks carrying the current
model's prediction, `score` = its confidence. Pull: every submitted annotation, mapped to our users by e-mail,
stored with source `labelstudio` and the Label Studio annotation id as its external reference, so a second pull
changes nothing; cancelled (skipped) annotations and annotations deleted in Label Studio are not imported. Sync:
pull, then, when a new model version became current, give the open tasks its predictions and make it the Label
Studio project's model version. Every network call happens between short transactions, never inside a
write transaction (on SQLite that would hold every annotator's answer back): fetch_annotations / plan_refresh
read, the network is called, apply_annotations / record_refresh write; connect_project does the same with the
link. Label Studio's failures reach the researcher as LabelStudioError (client.calling)."""

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from annotator.accounts.access import RESEARCHERS, Actor, require_role
from annotator.accounts.users import add_user
from annotator.annotation.annotate import Answer, record_answer
from annotator.errors import NotFoundError
from annotator.labelstudio.client import (
    LabelStudioError,
    calling,
    connect,
    find_project,
    load_token,
    save_token,
)
from annotator.labelstudio.config import (
    instructions,
    label_config,
    label_of,
    prediction,
    task_data,
    version_name,
)
from annotator.quality.guidelines import ShownGuideline, guideline_for, translations
from annotator.retraining.requests import maybe_request_fast_retrain
from annotator.sampling.sampler import select_batch
from core.progress import PhaseProgress
from db.engine import session_scope
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

Progress = PhaseProgress
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


@dataclass(frozen=True)
class Connected:
    """What `connect_project` left linked."""

    url: str
    ls_project_id: int


@dataclass(frozen=True)
class _ConnectPlan:
    """What connecting needs from our database, read in one short transaction."""

    linked: int | None
    """The Label Studio project the link names now, if any."""
    title: str
    label_config: str
    guidelines: str
    overlap: int


def connect_project(
    sessions: sessionmaker[Session], project_id: int, url: str, token: str, data_dir: Path, *, by: Actor
) -> Connected:
    """Check the server and the token, save the token (0600 file), and create the Label Studio project with the
    generated config, or update the one this project is linked to. The link is read in one short transaction,
    Label Studio is called with none open, and the result written in a second one. Only Label Studio's own
    "not found" (404) means the linked project is gone; any other failure raises LabelStudioError and creates
    nothing."""
    require_role(by, RESEARCHERS, "connect Label Studio")
    url = url.rstrip("/")
    with session_scope(sessions) as session:
        plan = _plan_connect(session, _project(session, project_id))
    client = connect(url, token)
    save_token(data_dir, token)
    ls_project_id, created = _create_or_update(client, url, plan)
    linked = False
    try:
        with session_scope(sessions) as session:
            kept = _record_link(session, _project(session, project_id), url, plan.linked, ls_project_id)
        linked = kept.ls_project_id == ls_project_id
    finally:
        if created and not linked:  # someone linked another project meanwhile, or ours could not be recorded
            _remove_unlinked(client, url, ls_project_id)
    return kept


def _plan_connect(session: Session, project: Project) -> _ConnectPlan:
    link = session.scalar(select(LabelStudioLink).where(LabelStudioLink.project_id == project.id))
    return _ConnectPlan(
        linked=link.ls_project_id if link is not None else None,
        title=f"lingualoop: {project.name}"[:50],
        label_config=label_config(project.label_names or {}, project.guidelines),
        guidelines=project_instructions(session, project),
        overlap=project.overlap,
    )


def project_instructions(session: Session, project: Project) -> str:
    """What Label Studio shows as the project's instructions: the project's guideline and every language's
    translation (annotators there work on posts of all languages, so each finds their own)."""
    own = guideline_for(session, project, "")
    return instructions(
        own.text, {code: shown.text for code, shown in translations(session, project).items()}
    )


def _create_or_update(client: Any, url: str, plan: _ConnectPlan) -> tuple[int, bool]:
    """The Label Studio project's id, and whether it was created (no transaction may be open: network)."""
    if plan.linked is not None:
        outcome = "no new project was created"
        if find_project(client, url, plan.linked, outcome) is not None:
            with calling(url, f"updating its project {plan.linked}", outcome):
                client.projects.update(
                    id=plan.linked,
                    label_config=plan.label_config,
                    expert_instruction=plan.guidelines,
                    show_instruction=bool(plan.guidelines),
                    maximum_annotations=plan.overlap,
                )
            return plan.linked, False
    with calling(url, "creating the project"):
        created = client.projects.create(
            title=plan.title,
            label_config=plan.label_config,
            expert_instruction=plan.guidelines,
            show_instruction=bool(plan.guidelines),
            maximum_annotations=plan.overlap,
        )
    return int(created.id), True


def _record_link(
    session: Session, project: Project, url: str, seen: int | None, ls_project_id: int
) -> Connected:
    """Link the project to `ls_project_id`, unless someone else linked it to another Label Studio project since
    `seen` was read: theirs stands (the first to finish wins), and is what this returns."""
    link = session.scalar(select(LabelStudioLink).where(LabelStudioLink.project_id == project.id))
    theirs = link.ls_project_id if link is not None else None
    if link is not None and theirs is not None and theirs not in (seen, ls_project_id):
        return Connected(link.url, theirs)
    if link is None:
        link = LabelStudioLink(project_id=project.id, url=url)
        session.add(link)
    link.url, link.ls_project_id = url, ls_project_id
    session.flush()
    return Connected(url, ls_project_id)


def _remove_unlinked(client: Any, url: str, ls_project_id: int) -> None:
    """Delete a project we created but could not link, so Label Studio shows no second project for ours."""
    # Best effort: what is linked is right either way, and a leftover is only clutter in Label Studio.
    with suppress(LabelStudioError), calling(url, f"removing the unused project {ls_project_id}"):
        client.projects.delete(id=ls_project_id)


@dataclass
class PushReport:
    tasks: int
    with_predictions: int


def push(
    sessions: sessionmaker[Session],
    project_id: int,
    n: int,
    data_dir: Path,
    *,
    by: Actor,
    progress: Progress = _no_progress,
) -> PushReport:
    """Send a sampler batch of n posts as tasks with the current model's predictions. The batch is chosen and
    committed first (its posts are queued for our own annotators too), the tasks are created over the network
    with no transaction open, then their ids are recorded: a push that fails halfway records nothing."""
    with session_scope(sessions) as session:
        project = _project(session, project_id)
        require_role(by, RESEARCHERS, "push tasks to Label Studio")
        link = get_link(session, project)
        url, ls_project_id, link_id = link.url, link.ls_project_id, link.id
        batch = select_batch(session, project, n)
        rows = session.execute(
            select(Item.id, Item.external_id, Item.text, Item.language)
            .join(QueueEntry, QueueEntry.item_id == Item.id)
            .where(QueueEntry.batch_id == batch.id)
            .order_by(QueueEntry.rank)
        ).all()
        version = current_version(session, project.id)
        probabilities = probabilities_of(session, version.id, [row[0] for row in rows]) if version else {}
        version_id = version.id if version else None
        name = version_name(version.id, version.backend) if version else None
        guidance = project_instructions(session, project)
    tasks: list[dict[str, Any]] = []
    for item_id, external_id, text, language in rows:
        task: dict[str, Any] = {"data": task_data(item_id, external_id, text, language)}
        if name and item_id in probabilities:
            task["predictions"] = [prediction(name, probabilities[item_id])]
        tasks.append(task)
    client = connect(url, load_token(data_dir))
    # The instructions follow the guidelines' latest versions, so the tasks arrive with what they were written for.
    with calling(url, "updating the project's instructions", "no task was recorded here"):
        client.projects.update(id=ls_project_id, expert_instruction=guidance, show_instruction=bool(guidance))
    created: list[LabelStudioTask] = []
    for start in range(0, len(tasks), _CHUNK):
        chunk = tasks[start : start + _CHUNK]
        with calling(url, "creating tasks", "no task was recorded here"):
            response = client.projects.import_tasks(id=ls_project_id, request=chunk, return_task_ids=True)
        task_ids = list(response.task_ids or [])
        if len(task_ids) != len(chunk):
            raise LabelStudioError(
                f"Label Studio created {len(task_ids)} of {len(chunk)} tasks; nothing recorded."
            )
        created += [
            LabelStudioTask(link_id=link_id, item_id=t["data"]["lingualoop_item"], task_id=task_id)
            for t, task_id in zip(chunk, task_ids, strict=True)
        ]
        progress("pushing tasks", len(created), len(tasks))
    with_predictions = sum(1 for t in tasks if "predictions" in t)
    if with_predictions:
        with calling(url, "setting the project's model version", "no task was recorded here"):
            client.projects.update(id=ls_project_id, model_version=name)
    with session_scope(sessions) as session:
        session.add_all(created)
        if with_predictions:
            get_link(session, _project(session, project_id)).model_version_id = version_id
    return PushReport(len(created), with_predictions)


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


@dataclass(frozen=True)
class Fetched:
    """A pull's network half: what Label Studio holds for the tasks we pushed, read with no write transaction
    open (so annotators never wait on the network)."""

    emails: dict[int, str]
    """Label Studio user id -> e-mail (how its annotators map to ours)."""
    annotations: list[tuple[int, dict[str, Any]]]
    """(our post id, a Label Studio annotation) for every annotation of a task we pushed."""


def fetch_annotations(
    session: Session, project: Project, data_dir: Path, *, by: Actor, progress: Progress = _no_progress
) -> Fetched:
    """Read our task ids (a read-only session will do), then every task of the Label Studio project over the
    network. Writes nothing; apply_annotations records the result."""
    require_role(by, RESEARCHERS, "pull annotations from Label Studio")
    link = get_link(session, project)
    items = dict(
        session.execute(
            select(LabelStudioTask.task_id, LabelStudioTask.item_id).where(LabelStudioTask.link_id == link.id)
        ).all()
    )
    client = connect(link.url, load_token(data_dir))
    annotations: list[tuple[int, dict[str, Any]]] = []
    seen = 0
    with calling(link.url, "reading its users and tasks", "nothing was pulled"):
        emails = _ls_users(client)
        for task in client.tasks.list(project=link.ls_project_id, fields="all", page_size=500):
            seen += 1
            item_id = items.get(int(task.id))
            if item_id is not None:  # else a task that was not pushed by us
                annotations += [(item_id, _as_dict(annotation)) for annotation in task.annotations or []]
            if seen % 500 == 0:
                progress("pulling tasks", seen, len(items))
    progress("pulling tasks", seen, len(items))
    return Fetched(emails, annotations)


def apply_annotations(
    session: Session, project: Project, fetched: Fetched, *, by: Actor, create_users: bool = False
) -> PullReport:
    """A pull's database half: record the fetched annotations (idempotent: an annotation already recorded with
    the same label changes nothing), in one short write transaction."""
    require_role(by, RESEARCHERS, "pull annotations from Label Studio")
    link = get_link(session, project)
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
    guideline_of = _guideline_ids(session, project, link)
    for item_id, annotation in fetched.annotations:
        _pull_one(
            session,
            project,
            item_id,
            annotation,
            _Pulling(fetched.emails, ours, known, create_users, guideline_of(item_id)),
            report,
            by,
        )
    if report.annotations_added or report.annotations_updated:
        maybe_request_fast_retrain(session, project)
    link.last_sync_at = utcnow()
    link.last_sync_message = f"pulled: {report.annotations_added} new, {report.annotations_updated} changed, {report.unchanged} unchanged"
    session.flush()
    return report


def _guideline_ids(session: Session, project: Project, link: LabelStudioLink) -> Callable[[int], int | None]:
    """Post id -> the id of the guideline version its language's annotators are shown now: what a pulled
    answer stores (Label Studio does not say which version its annotator read, the pull's time is our best)."""
    languages = dict(
        session.execute(
            select(Item.id, Item.language)
            .join(LabelStudioTask, LabelStudioTask.item_id == Item.id)
            .where(LabelStudioTask.link_id == link.id)
        ).all()
    )
    shown: dict[str, ShownGuideline] = {}

    def guideline_of(item_id: int) -> int | None:
        language = languages.get(item_id, "")
        if language not in shown:
            shown[language] = guideline_for(session, project, language)
        return shown[language].id

    return guideline_of


@dataclass
class _Pulling:
    """What recording one pulled annotation needs besides the annotation itself."""

    emails: dict[int, str]
    ours: dict[str | None, User]
    known: dict[str | None, Annotation]
    create_users: bool
    guideline_id: int | None


def _as_dict(annotation: Any) -> dict[str, Any]:
    return annotation if isinstance(annotation, dict) else dict(annotation.dict())


def _pull_one(
    session: Session,
    project: Project,
    item_id: int,
    annotation: dict[str, Any],
    pulling: _Pulling,
    report: PullReport,
    by: Actor,
) -> None:
    emails, ours, known = pulling.emails, pulling.ours, pulling.known
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
    if user is None and email and pulling.create_users:
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
        guideline_id=pulling.guideline_id,
    )
    stored.external_ref = ref
    known[ref] = stored
    if existing is None:
        report.annotations_added += 1
    else:
        report.annotations_updated += 1
    session.flush()


@dataclass(frozen=True)
class Refresh:
    """Predictions of a newly current version for the open tasks (no annotation yet), ready to send."""

    url: str
    ls_project_id: int
    version_id: int
    version_name: str
    payload: list[dict[str, Any]]


def plan_refresh(session: Session, project: Project) -> Refresh | None:
    """None when the Label Studio project already follows the current version (or there is none); else what to
    send. Reads only: a read-only session will do."""
    link = get_link(session, project)
    version = current_version(session, project.id)
    if version is None or version.id == link.model_version_id or link.ls_project_id is None:
        return None
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
    return Refresh(link.url, link.ls_project_id, version.id, name, payload)


def send_refresh(refresh: Refresh, data_dir: Path) -> int:
    """The network half: the predictions to the open tasks, and the project's model version. Returns the tasks
    updated."""
    client = connect(refresh.url, load_token(data_dir))
    with calling(refresh.url, "sending the new model's predictions", "the next sync sends them again"):
        for start in range(0, len(refresh.payload), _CHUNK):
            client.projects.import_predictions(
                id=refresh.ls_project_id, request=refresh.payload[start : start + _CHUNK]
            )
        if refresh.payload:  # Label Studio accepts a model version only once some prediction carries it
            client.projects.update(id=refresh.ls_project_id, model_version=refresh.version_name)
    return len(refresh.payload)


def record_refresh(session: Session, project: Project, refresh: Refresh) -> None:
    get_link(session, project).model_version_id = refresh.version_id
    session.flush()


def pull(
    sessions: sessionmaker[Session],
    readers: sessionmaker[Session],
    project_id: int,
    data_dir: Path,
    *,
    by: Actor,
    create_users: bool = False,
    progress: Progress = _no_progress,
) -> PullReport:
    """Import the submitted annotations of the project's tasks (run it as often as you like): fetched with a
    read-only session, recorded in one short write transaction."""
    with session_scope(readers) as session:
        fetched = fetch_annotations(
            session, _project(session, project_id), data_dir, by=by, progress=progress
        )
    with session_scope(sessions) as session:
        return apply_annotations(
            session, _project(session, project_id), fetched, by=by, create_users=create_users
        )


def sync(
    sessions: sessionmaker[Session],
    readers: sessionmaker[Session],
    project_id: int,
    data_dir: Path,
    *,
    by: Actor,
) -> str:
    """Pull, then follow a new current model version, each network call between short transactions (`readers`
    never take SQLite's write lock). Returns what happened, for the job's message."""
    report = pull(sessions, readers, project_id, data_dir, by=by)
    with session_scope(readers) as session:
        refresh = plan_refresh(session, _project(session, project_id))
    refreshed = send_refresh(refresh, data_dir) if refresh is not None else 0
    message = (
        f"pulled {report.annotations_added} new and {report.annotations_updated} changed annotations"
        + (f"; {refreshed} open tasks got the new model's predictions" if refreshed else "")
    )
    with session_scope(sessions) as session:
        project = _project(session, project_id)
        if refresh is not None:
            record_refresh(session, project, refresh)
        get_link(session, project).last_sync_message = message
    return message


def _project(session: Session, project_id: int) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise NotFoundError(f"Project {project_id} no longer exists.")
    return project


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
