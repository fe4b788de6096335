"""Who may do what. Every function the app calls on behalf of a signed-in user checks the role here, so that an
annotator cannot retrain, export or manage users even by calling the domain layer without the UI."""

import math
import threading
import time
from dataclasses import dataclass

from annotator.errors import PermissionDeniedError
from db.models import Role, User

RESEARCHERS = (Role.RESEARCHER, Role.ADMIN)
ADMINS = (Role.ADMIN,)


@dataclass(frozen=True)
class Operator:
    """Whoever runs lingualoop's command line or its workers on this machine: they hold the database's file or
    URL, so no role check stops them. Only the CLI, the workers and lingualoop's own follow-up work (an import
    creating the accounts its labels belong to, a fast retrain after enough labels) act as the operator."""

    name: str = "operator"


OPERATOR = Operator()
Actor = User | Operator
"""Who a domain call acts for: always given (a call without it does not type-check), never a default."""


def actor_name(user: Actor) -> str:
    """Who acted, for the record: a username, or "operator" for the command line and the workers."""
    return user.name if isinstance(user, Operator) else user.username


def require_role(user: Actor, roles: tuple[Role, ...], action: str) -> None:
    """Raise PermissionDeniedError unless the actor is the operator, or an active user with one of the roles."""
    if isinstance(user, Operator):
        return
    if not user.active or user.role not in roles:
        allowed = " or ".join(role.value for role in roles)
        raise PermissionDeniedError(
            f"Only a {allowed} may {action} (you are signed in as {user.role.value})."
        )


class LoginThrottle:
    """Failed sign-ins per username: after `limit` failures within `window` seconds, that username is refused
    for `lockout` seconds (one process's memory: enough for one app server; a restart forgets it)."""

    def __init__(self, limit: int = 5, window: float = 300.0, lockout: float = 60.0) -> None:
        self.limit, self.window, self.lockout = limit, window, lockout
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, username: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            until = self._locked_until.get(username, 0.0)
        if until > now:
            raise PermissionDeniedError(
                f"Too many failed sign-ins for '{username}': try again in {math.ceil(until - now)} s."
            )

    def failed(self, username: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = [t for t in self._failures.get(username, []) if now - t < self.window] + [now]
            self._failures[username] = recent
            if len(recent) >= self.limit:
                self._locked_until[username] = now + self.lockout
                self._failures[username] = []

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(username, None)
            self._locked_until.pop(username, None)
