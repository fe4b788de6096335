"""Label Studio: a local server, connect, push, pull."""

from typing import Annotated

import typer

from annotator.accounts.access import OPERATOR
from annotator.corpus.projects import get_project
from annotator.errors import LingualoopError
from annotator.labelstudio import server as ls_server
from annotator.labelstudio.sync import connect_project
from annotator.labelstudio.sync import pull as ls_pull
from annotator.labelstudio.sync import push as ls_push
from app.cli.common import (
    ProjectOption,
    _phase_bars,
    _progress,
    console,
    friendly_errors,
    labelstudio_cli,
    state,
)
from db.settings import masked


@labelstudio_cli.command("serve")
@friendly_errors
def labelstudio_serve(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port of the Label Studio server.")] = 8090,
) -> None:
    """Run a local Label Studio (installed into its own virtual environment on first use) until Ctrl-C."""
    folder = state(ctx).settings.data_dir / "labelstudio"
    password, token = ls_server.credentials(folder)
    settings = ls_server.ServerSettings(folder / "venv", folder / "data", port, password, token)
    process = ls_server.start(settings, lambda line: console.print(line, highlight=False, markup=False))
    console.print(
        f"Label Studio is running at {settings.url}\n  sign in: {ls_server.ADMIN_EMAIL} / {password}\n"
        f"  connect: lingualoop labelstudio connect --url {settings.url}   (its token {masked(token)} is read "
        f"from {folder / 'credentials'}, mode 0600)\nCtrl-C stops it."
    )
    try:
        process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait(timeout=30)


@labelstudio_cli.command("connect")
@friendly_errors
def labelstudio_connect(
    ctx: typer.Context,
    url: Annotated[str, typer.Option(help="Label Studio's address, e.g. http://localhost:8090.")],
    token: Annotated[
        str | None,
        typer.Option(
            help="Your API token (Account & Settings); stored in a 0600 file. Default: the local server's."
        ),
    ] = None,
    project: ProjectOption = None,
) -> None:
    """Check the server and the token, and create (or find) this project's Label Studio project."""
    if token is None:
        local = state(ctx).settings.data_dir / "labelstudio" / "credentials"
        if not local.exists():
            raise LingualoopError(
                "Give --token (Account & Settings in Label Studio), or start `labelstudio serve`."
            )
        token = ls_server.credentials(local.parent)[1]
    with state(ctx).transaction(read_only=True) as session:
        project_id = get_project(session, project).id
    # Label Studio is called between two short transactions of its own.
    link = connect_project(
        state(ctx).sessions(), project_id, url, token, state(ctx).settings.data_dir, by=OPERATOR
    )
    console.print(
        f"Connected to {link.url}: Label Studio project {link.ls_project_id} (token {masked(token)})."
    )


@labelstudio_cli.command("push")
@friendly_errors
def labelstudio_push(
    ctx: typer.Context,
    project: ProjectOption = None,
    n: Annotated[int, typer.Option("--n", help="Posts to send (a sampler batch).")] = 100,
) -> None:
    """Send the next sampler batch as tasks with the current model's predictions."""
    with state(ctx).transaction(read_only=True) as session:
        project_id = get_project(session, project).id
    with _progress() as bar:  # the network calls run between short transactions
        report = ls_push(
            state(ctx).sessions(),
            project_id,
            n,
            state(ctx).settings.data_dir,
            progress=_phase_bars(bar),
            by=OPERATOR,
        )
    console.print(
        f"Pushed {report.tasks} tasks ({report.with_predictions} with the current model's prediction)."
    )


@labelstudio_cli.command("pull")
@friendly_errors
def labelstudio_pull(
    ctx: typer.Context,
    project: ProjectOption = None,
    create_users: Annotated[
        bool, typer.Option(help="Create an annotator account for each Label Studio user we do not know.")
    ] = False,
) -> None:
    """Import submitted annotations (run it as often as you like: nothing is imported twice)."""
    with state(ctx).transaction(read_only=True) as session:
        project_id = get_project(session, project).id
    with _progress() as bar:  # fetched with a read-only session, recorded in one short write transaction
        report = ls_pull(
            state(ctx).sessions(),
            state(ctx).sessions(read_only=True),
            project_id,
            state(ctx).settings.data_dir,
            create_users=create_users,
            progress=_phase_bars(bar),
            by=OPERATOR,
        )
    console.print(
        f"Pulled {report.annotations_added} new and {report.annotations_updated} changed annotations "
        f"({report.unchanged} unchanged, {report.skipped_cancelled} skipped in Label Studio, "
        f"{report.skipped_unknown_user} from users we do not know, {report.users_created} accounts created)."
    )
