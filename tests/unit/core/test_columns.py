"""The text column is found by the names real corpora use, in one order, for import and classify alike."""

from core.columns import TEXT_COLUMNS, find_column, text_column


def test_text_is_preferred_then_the_usual_names_in_order() -> None:
    assert text_column(["id", "tweet", "text"]) == "text"
    assert text_column(["id", "tweet", "post"]) == "post"
    assert text_column(["full_text", "id"]) == "full_text"
    assert text_column(["message"]) == "message"


def test_case_is_ignored_and_the_file_spelling_returned() -> None:
    assert text_column(["ID", "Tweet"]) == "Tweet"
    assert text_column(["TEXT", "text"]) == "text"  # an exact name wins over one that differs in case


def test_no_usual_name_gives_none() -> None:
    assert text_column(["id", "lang", "body_html"]) is None
    assert text_column([]) is None


def test_find_column_with_other_candidates() -> None:
    assert find_column(["Tweet_ID", "x"], ("id", "tweet_id")) == "Tweet_ID"
    assert find_column(["x"], ()) is None
    assert TEXT_COLUMNS[0] == "text"
