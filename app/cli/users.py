"""User accounts."""

import getpass
from typing import Annotated

import typer
from rich.table import Table

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user, generate_password, list_users, set_password
from app.cli.common import _split_codes, console, friendly_errors, state, users_cli
from db.models import Role


@users_cli.command("add")
@friendly_errors
def users_add(
    ctx: typer.Context,
    username: str,
    role: Annotated[Role, typer.Option(help="annotator, researcher or admin.")] = Role.ANNOTATOR,
    languages: Annotated[str, typer.Option(help="Languages this user labels, comma separated.")] = "",
    email: Annotated[str | None, typer.Option(help="E-mail (maps Label Studio users to ours).")] = None,
    password: Annotated[
        str | None, typer.Option(help="Password (default: generated and shown once).")
    ] = None,
) -> None:
    """Create an account."""
    chosen = password or generate_password()
    with state(ctx).transaction() as session:
        add_user(
            session,
            username,
            role=role,
            password=chosen,
            languages=_split_codes(languages),
            email=email,
            by=OPERATOR,
        )
    console.print(f"Created {role.value} '{username}'." + ("" if password else f" Password: {chosen}"))


@users_cli.command("list")
@friendly_errors
def users_list(ctx: typer.Context) -> None:
    """List accounts."""
    with state(ctx).transaction(read_only=True) as session:
        table = Table("user", "role", "languages", "email", "can log in")
        for user in list_users(session, by=OPERATOR):
            table.add_row(
                user.username,
                user.role.value,
                ", ".join(user.languages),
                user.email or "",
                "yes" if user.password_hash else "no",
            )
        console.print(table)


@users_cli.command("passwd")
@friendly_errors
def users_passwd(
    ctx: typer.Context,
    username: str,
    password: Annotated[str | None, typer.Option(help="New password (default: asked for).")] = None,
) -> None:
    """Set a user's password."""
    chosen = password or getpass.getpass(f"New password for {username}: ")
    with state(ctx).transaction() as session:
        set_password(session, username, chosen, by=OPERATOR)
    console.print(f"Password of '{username}' changed.")
