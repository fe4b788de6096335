import pytest

from core.languages import (
    LanguageDetector,
    UnknownLanguageError,
    is_rtl,
    language_name,
    normalise_language,
)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("en", "en"),
        ("EN", "en"),
        (" es ", "es"),
        ("in", "id"),
        ("pt_BR", "pt"),
        ("en-US", "en"),
        ("iw", "he"),
        ("fil", "tl"),
    ],
)
def test_normalises_codes_and_aliases(raw: str, code: str) -> None:
    assert normalise_language(raw) == code


@pytest.mark.parametrize("raw", ["xx", "english", "", "und", "zz-ZZ"])
def test_rejects_unknown_codes(raw: str) -> None:
    with pytest.raises(UnknownLanguageError, match="not an ISO 639-1 language code"):
        normalise_language(raw)


def test_names_and_direction() -> None:
    assert language_name("hu") == "Hungarian"
    assert is_rtl("ar") and is_rtl("ur") and not is_rtl("hi")


def test_detector_restricted_to_project_languages() -> None:
    detector = LanguageDetector(["de", "hu", "tr"])
    assert detector.languages == ["de", "hu", "tr"]
    assert detector.detect("Az új bevándorlási törvényről szavaz ma a parlament").language == "hu"
    # Spanish is not a project language, so it can never be the answer.
    assert detector.detect("El gobierno aprobó la ley de inmigración").language in {"de", "hu", "tr"}


def test_detector_without_project_languages_uses_iso_codes_only() -> None:
    detector = LanguageDetector()
    assert all(len(code) == 2 for code in detector.languages)
    found = detector.detect("Правительство обсуждает новый закон о миграции")
    assert found.language == "ru" and 0.5 < found.confidence <= 1.0
