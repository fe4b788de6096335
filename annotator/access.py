"""Who may do what. Every function the app calls on behalf of a signed-in user checks the role here, so that an
annotator cannot retrain, export or manage users even by calling the domain layer without the UI."""

from annotator.errors import PermissionDeniedError
from db.models import Role, User

RESEARCHERS = (Role.RESEARCHER, Role.ADMIN)
ADMINS = (Role.ADMIN,)


def require_role(user: User | None, roles: tuple[Role, ...], action: str) -> None:
    """Raise PermissionDeniedError unless the user is active and has one of the roles.

    `user=None` is the local operator of the command line, who owns the database anyway."""
    if user is None:
        return
    if not user.active or user.role not in roles:
        allowed = " or ".join(role.value for role in roles)
        raise PermissionDeniedError(
            f"Only a {allowed} may {action} (you are signed in as {user.role.value})."
        )


def is_researcher(user: User) -> bool:
    return user.role in RESEARCHERS
