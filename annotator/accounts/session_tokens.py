"""Signed sign-in tokens, so that a browser reload (or a link to a page) keeps a user signed in.

A token is `user id . issued (unix seconds) . HMAC-SHA256`, keyed with the server's secret and bound to the
user's password hash: it expires after `max_age`, a new password (or a deactivated account) ends every session
of that user, and signing out ends the user's sessions on that app server. The app keeps it in a cookie (SameSite=Strict); nothing about it is stored server-side."""

import hashlib
import hmac
from collections.abc import Mapping
from typing import Final

from sqlalchemy.orm import Session

from db.models import User

MAX_AGE: Final[int] = 12 * 3600
"""Seconds a sign-in lasts without signing in again."""


def _mac(secret: bytes, user_id: int, issued: int, password_hash: str | None) -> str:
    message = f"{user_id}.{issued}.{password_hash or ''}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def issue_token(user: User, secret: bytes, now: float) -> str:
    issued = int(now)
    return f"{user.id}.{issued}.{_mac(secret, user.id, issued, user.password_hash)}"


def user_for_token(
    session: Session,
    token: str | None,
    secret: bytes,
    now: float,
    max_age: int = MAX_AGE,
    signed_out: Mapping[int, float] | None = None,
) -> User | None:
    """The active user a token was issued to, or None for a missing, malformed, forged or expired token, or one
    issued before the user last signed out (`signed_out`: user id -> when, kept by the app server)."""
    if not token:
        return None
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    user_id, issued = int(parts[0]), int(parts[1])
    if not 0 <= now - issued <= max_age:
        return None
    if signed_out is not None and issued <= signed_out.get(user_id, -1.0):
        return None
    user = session.get(User, user_id)
    if user is None or not user.active or user.password_hash is None:
        return None
    expected = _mac(secret, user_id, issued, user.password_hash)
    return user if hmac.compare_digest(expected, parts[2]) else None
