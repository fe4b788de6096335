import pytest
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user, get_user, set_password, verify_password
from annotator.errors import AlreadyExistsError, LingualoopError, NotFoundError
from core.languages import UnknownLanguageError
from db.models import Role


def test_passwords_are_hashed_with_argon2(session: Session) -> None:
    user = add_user(
        session, "amira", role=Role.RESEARCHER, password="s3cret-enough", languages=["AR", "in"], by=OPERATOR
    )
    assert user.password_hash is not None and user.password_hash.startswith("$argon2")
    assert "s3cret-enough" not in user.password_hash
    assert verify_password(user.password_hash, "s3cret-enough")
    assert not verify_password(user.password_hash, "wrong password")
    assert user.languages == ["ar", "id"]


def test_rules(session: Session) -> None:
    add_user(session, "ravi", by=OPERATOR)
    with pytest.raises(AlreadyExistsError):
        add_user(session, "ravi", by=OPERATOR)
    with pytest.raises(LingualoopError, match="at least 8"):
        add_user(session, "short", password="abc", by=OPERATOR)
    with pytest.raises(UnknownLanguageError):
        add_user(session, "lang", languages=["klingon"], by=OPERATOR)
    with pytest.raises(NotFoundError):
        get_user(session, "nobody")


def test_set_password_and_accounts_without_one(session: Session) -> None:
    user = add_user(session, "importer", by=OPERATOR)
    assert not verify_password(user.password_hash, "anything")
    set_password(session, "importer", "a new password", by=OPERATOR)
    assert verify_password(user.password_hash, "a new password")
