"""Versioned guidelines per language: versions grow per (project, language), an annotator is shown their
language's translation, else the project's guideline, else the unversioned text; bad input changes nothing."""

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from annotator.accounts.access import OPERATOR
from annotator.accounts.users import add_user
from annotator.errors import LingualoopError, PermissionDeniedError
from annotator.quality.guidelines import (
    guideline_for,
    guideline_history,
    guideline_tags,
    set_guideline,
    translations,
)
from db.models import Guideline, Project, Role
from testing.factories import make_project


@pytest.fixture
def project(session: Session) -> Project:
    return make_project(session, languages=("en", "tr", "ar"))


def _versions(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Guideline)) or 0


def test_versions_grow_per_language_and_the_project_text_follows(session: Session, project: Project) -> None:
    first = set_guideline(session, project, OPERATOR, "Label the stance toward immigration.")
    second = set_guideline(session, project, OPERATOR, "Label the stance toward immigrants.", language="")
    turkish = set_guideline(session, project, OPERATOR, "Göçe karşı tutumu etiketleyin.", language="TR")
    turkish_2 = set_guideline(
        session, project, OPERATOR, "Göçmenlere karşı tutumu etiketleyin.", language="tr"
    )
    assert [(g.language, g.version) for g in (first, second, turkish, turkish_2)] == [
        ("", 1),
        ("", 2),
        ("tr", 1),
        ("tr", 2),
    ]
    assert project.guidelines == "Label the stance toward immigrants."  # Label Studio's config reads it
    assert (
        set_guideline(session, project, OPERATOR, "Göçmenlere karşı tutumu etiketleyin.", "tr") == turkish_2
    )
    assert _versions(session) == 4  # the same text again adds no version
    history = guideline_history(session, project, "tr")
    assert [(v.version, v.author) for v in history] == [(2, "operator"), (1, "operator")]
    assert len(guideline_history(session, project, "*")) == 4
    assert guideline_tags(session, project) == {
        first.id: "v1",
        second.id: "v2",
        turkish.id: "tr v1",
        turkish_2.id: "tr v2",
    }


def test_an_annotator_sees_their_translation_else_the_project_guideline(
    session: Session, project: Project
) -> None:
    project.guidelines = "Text from before versions."
    unversioned = guideline_for(session, project, "tr")
    assert (unversioned.id, unversioned.version, unversioned.text, unversioned.tag) == (
        None,
        0,
        "Text from before versions.",
        "",
    )
    own = set_guideline(session, project, OPERATOR, "The project's guideline.")
    turkish = set_guideline(session, project, OPERATOR, "Türkçe yönergeler.", "tr")
    shown_tr, shown_ar = guideline_for(session, project, "tr"), guideline_for(session, project, "ar")
    assert (shown_tr.id, shown_tr.language, shown_tr.version, shown_tr.tag) == (turkish.id, "tr", 1, "tr v1")
    assert (shown_ar.id, shown_ar.language, shown_ar.text, shown_ar.tag) == (
        own.id,
        "",
        "The project's guideline.",
        "v1",
    )
    withdrawn = set_guideline(session, project, OPERATOR, "  ", "tr")  # an emptied translation is withdrawn
    assert withdrawn.version == 2
    assert guideline_for(session, project, "tr").id == own.id
    assert translations(session, project) == {}


def test_bad_input_gets_a_clear_message_and_changes_nothing(session: Session, project: Project) -> None:
    set_guideline(session, project, OPERATOR, "The project's guideline.")
    before, text = _versions(session), project.guidelines
    with pytest.raises(
        LingualoopError, match=r"no language 'de'.*Arabic \(ar\), English \(en\), Turkish \(tr\)"
    ):
        set_guideline(session, project, OPERATOR, "Deutsche Richtlinien.", "de")
    with pytest.raises(LingualoopError, match="no language 'xx-nonsense'"):
        set_guideline(session, project, OPERATOR, "?", "xx-nonsense")
    with pytest.raises(LingualoopError, match="no Arabic \\(ar\\) translation to withdraw"):
        set_guideline(session, project, OPERATOR, "", "ar")
    with pytest.raises(LingualoopError, match="at most 100,000"):
        set_guideline(session, project, OPERATOR, "x" * 100_001)
    annotator = add_user(session, "amira", role=Role.ANNOTATOR, by=OPERATOR)
    with pytest.raises(PermissionDeniedError, match="change the guidelines"):
        set_guideline(session, project, annotator, "Mine now.")
    assert (_versions(session), project.guidelines) == (before, text)


def test_a_researchers_version_names_them(session: Session, project: Project) -> None:
    researcher = add_user(session, "rosa", role=Role.RESEARCHER, by=OPERATOR)
    made = set_guideline(session, project, researcher, "Rosa's guideline.")
    assert made.user_id == researcher.id
    assert guideline_history(session, project)[0].author == "rosa"
