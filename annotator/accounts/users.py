"""User accounts: argon2 password hashes, roles and the languages each annotator labels."""

import secrets
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator.accounts.access import ADMINS, OPERATOR, Actor, LoginThrottle, require_role
from annotator.errors import AlreadyExistsError, LingualoopError, NotFoundError, PermissionDeniedError
from core.languages import normalise_language
from db.models import Role, User

_HASHER = PasswordHasher()
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise LingualoopError(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        return False


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def add_user(
    session: Session,
    username: str,
    *,
    role: Role = Role.ANNOTATOR,
    password: str | None = None,
    languages: Iterable[str] = (),
    email: str | None = None,
    by: Actor,
) -> User:
    """Create an account; without a password it exists (for imported labels) but cannot log in. `by` is the
    signed-in user, or OPERATOR for the command line."""
    require_role(by, ADMINS, "create accounts")
    username = username.strip()
    if not username or len(username) > 80:
        raise LingualoopError("A username needs 1 to 80 characters.")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise AlreadyExistsError(f"A user named '{username}' already exists.")
    user = User(
        username=username,
        role=role,
        password_hash=hash_password(password) if password else None,
        languages=sorted({normalise_language(code) for code in languages}),
        email=email.strip().lower() if email else None,
    )
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFoundError(f"No user named '{username}'.")
    return user


def get_or_create_user(session: Session, username: str, *, role: Role = Role.ANNOTATOR) -> User:
    user = session.scalar(select(User).where(User.username == username))
    # Follow-up work of an import that checked its own role: the accounts its labels belong to.
    return user if user is not None else add_user(session, username, role=role, by=OPERATOR)


def set_password(session: Session, username: str, password: str, by: Actor) -> User:
    require_role(by, ADMINS, "reset passwords")
    if len(password) < 8:
        raise LingualoopError("A password needs at least 8 characters.")
    user = get_user(session, username)
    user.password_hash = hash_password(password)
    return user


def update_user(
    session: Session,
    username: str,
    *,
    role: Role,
    languages: Iterable[str],
    active: bool,
    by: Actor,
) -> User:
    """Change an account's role, languages and whether it may sign in (an admin cannot lock themselves out)."""
    require_role(by, ADMINS, "change accounts")
    user = get_user(session, username)
    if isinstance(by, User) and user.id == by.id and (role != Role.ADMIN or not active):
        raise LingualoopError("You cannot remove your own admin role or deactivate yourself.")
    user.role, user.active = role, active
    user.languages = sorted({normalise_language(code) for code in languages})
    session.flush()
    return user


def list_users(session: Session, by: Actor) -> list[User]:
    require_role(by, ADMINS, "list accounts")
    return list(session.scalars(select(User).order_by(User.username)))


def authenticate(session: Session, username: str, password: str, throttle: LoginThrottle) -> User:
    """The active user with this name and password; one message for every failure, so it does not tell which
    usernames exist."""
    username = username.strip()
    throttle.check(username)
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active or not verify_password(user.password_hash, password):
        throttle.failed(username)
        raise PermissionDeniedError("Unknown username or wrong password.")
    throttle.succeeded(username)
    return user
