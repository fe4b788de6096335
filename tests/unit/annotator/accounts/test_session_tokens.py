"""Sign-in tokens: a reload keeps a user signed in; a forged, expired or outdated token does not."""

import os
from pathlib import Path

from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.accounts.session_tokens import MAX_AGE, issue_token, user_for_token
from annotator.accounts.users import add_user, set_password
from db.settings import session_secret

SECRET = b"k" * 32


def test_a_token_names_its_user_until_it_expires(session: Session) -> None:
    amira = add_user(session, "amira", password="a long password", by=OPERATOR)
    token = issue_token(amira, SECRET, 1_000_000)
    assert user_for_token(session, token, SECRET, 1_000_000 + MAX_AGE) is amira
    assert user_for_token(session, token, SECRET, 1_000_001 + MAX_AGE) is None  # expired
    assert user_for_token(session, token, SECRET, 999_999) is None  # from the future
    assert user_for_token(session, token, b"other" * 8, 1_000_000) is None  # another server's key
    signed_out = {amira.id: 1_000_050.0}
    assert (
        user_for_token(session, token, SECRET, 1_000_100, signed_out=signed_out) is None
    )  # signed out since
    later = issue_token(amira, SECRET, 1_000_060)
    assert user_for_token(session, later, SECRET, 1_000_100, signed_out=signed_out) is amira


def test_forged_and_outdated_tokens_are_refused(session: Session) -> None:
    amira = add_user(session, "amira", password="a long password", by=OPERATOR)
    add_user(session, "ravi", password="another password", by=OPERATOR)
    token = issue_token(amira, SECRET, 1_000_000)
    user_id, issued, mac = token.split(".")
    ravi_id = str(int(user_id) + 1)
    for forged in (f"{ravi_id}.{issued}.{mac}", f"{user_id}.{issued}.{'0' * 64}", "", "x.y.z", "1.2", None):
        assert user_for_token(session, forged, SECRET, 1_000_000) is None, forged
    set_password(session, "amira", "a new long password", by=OPERATOR)  # a new password ends old sessions
    assert user_for_token(session, token, SECRET, 1_000_000) is None
    token = issue_token(amira, SECRET, 1_000_000)
    amira.active = False  # so does deactivating the account
    assert user_for_token(session, token, SECRET, 1_000_000) is None


def test_the_session_secret_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    first = session_secret(tmp_path, environ={})
    assert len(first) == 64 and session_secret(tmp_path, environ={}) == first
    assert os.stat(tmp_path / "session.secret").st_mode & 0o077 == 0
    assert session_secret(tmp_path, environ={"LINGUALOOP_SESSION_SECRET": "shared"}) == b"shared"
