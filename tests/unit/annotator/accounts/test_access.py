"""Role checks in the domain layer: an annotator cannot retrain, export, import or manage accounts even without
the UI; sign-in is throttled after repeated failures."""

import inspect
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR, LoginThrottle
from annotator.accounts.users import add_user, authenticate, list_users, set_password
from annotator.annotation.adjudication import adjudicate
from annotator.annotation.flags import list_flagged
from annotator.corpus.export import export_project
from annotator.corpus.ingest import import_file
from annotator.corpus.projects import create_project
from annotator.demo import create_demo_project
from annotator.errors import PermissionDeniedError
from annotator.jobloop import request_sync
from annotator.reports.dashboard import agreement, label_counts, version_summaries
from annotator.retraining.requests import request_fast_retrain, request_retrain
from annotator.sampling.settings import SamplingSettings, update_sampling
from db.models import Role
from testing.factories import make_project, posts, write_csv


def test_an_annotator_cannot_call_researcher_functions(session: Session, tmp_path: Path) -> None:
    project = make_project(session)
    annotator = add_user(session, "amira", password="secret-pass", by=OPERATOR)
    researcher = add_user(session, "rosa", role=Role.RESEARCHER, password="secret-pass", by=OPERATOR)
    csv = write_csv(tmp_path / "p.csv", posts(3))
    denied = [
        lambda: request_retrain(session, project, by=annotator),
        lambda: request_fast_retrain(session, project, by=annotator),
        lambda: export_project(session, project, tmp_path / "out.csv", by=annotator),
        lambda: import_file(session, project, csv, by=annotator),
        lambda: label_counts(session, project, annotator),
        lambda: agreement(session, project, annotator),
        lambda: version_summaries(session, project, annotator),
        lambda: adjudicate(session, project, annotator, 1, "pro"),
        lambda: update_sampling(session, project, annotator, SamplingSettings(), overlap=1),
        lambda: add_user(session, "eve", by=annotator),
        lambda: add_user(session, "eve", by=researcher),  # accounts are for admins
        lambda: list_users(session, by=researcher),
        lambda: set_password(session, "amira", "a-new-password", by=annotator),
        lambda: request_sync(session, project, annotator),
        lambda: create_project(session, "another", by=annotator),
        lambda: list_flagged(session, project, annotator),
        lambda: create_demo_project(session, by=researcher),
    ]
    for call in denied:
        with pytest.raises(PermissionDeniedError, match="may"):
            call()
    assert not (tmp_path / "out.csv").exists()
    assert request_retrain(session, project, by=researcher).id  # a researcher may
    assert import_file(session, project, csv, by=researcher).posts_added == 3


def test_every_state_changing_domain_function_needs_an_actor() -> None:
    """Access fails closed: `by` has no default anywhere, so leaving it out is a TypeError (and a mypy error),
    never full rights. The command line passes OPERATOR explicitly."""
    for function in (
        request_retrain,
        request_fast_retrain,
        export_project,
        import_file,
        add_user,
        set_password,
        list_users,
        request_sync,
        create_project,
        create_demo_project,
        update_sampling,
    ):
        by = inspect.signature(function).parameters["by"]
        assert by.default is inspect.Parameter.empty, function.__name__


def test_a_deactivated_researcher_is_refused(session: Session) -> None:
    project = make_project(session)
    rosa = add_user(session, "rosa", role=Role.RESEARCHER, password="secret-pass", by=OPERATOR)
    rosa.active = False
    with pytest.raises(PermissionDeniedError):
        request_retrain(session, project, by=rosa)


def test_sign_in_is_throttled_after_repeated_failures(session: Session) -> None:
    add_user(session, "amira", password="right-password", by=OPERATOR)
    throttle = LoginThrottle(limit=3, window=60, lockout=30)
    for _ in range(3):
        with pytest.raises(PermissionDeniedError, match="Unknown username or wrong password"):
            authenticate(session, "amira", "wrong", throttle)
    with pytest.raises(PermissionDeniedError, match="Too many failed sign-ins"):
        authenticate(session, "amira", "right-password", throttle)  # even the right password, for a while
    throttle.check("amira", now=10**9)  # after the lockout it is allowed again
    other = LoginThrottle()
    assert authenticate(session, "amira", "right-password", other).username == "amira"
    with pytest.raises(PermissionDeniedError, match="Unknown username or wrong password"):
        authenticate(session, "nobody", "x", other)  # the same message: no hint which usernames exist
