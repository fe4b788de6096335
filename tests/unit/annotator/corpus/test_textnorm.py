from annotator.corpus.textnorm import normalise_text, text_hash


def test_retweets_links_case_and_spaces_collapse() -> None:
    original = "Open the borders! https://t.co/abc"
    assert text_hash(original) == text_hash("RT @news: open  the BORDERS! https://t.co/zzz")
    assert text_hash(original) != text_hash("Close the borders!")


def test_turkish_dotted_capitals_match_lower_case() -> None:
    assert normalise_text("İSTANBUL'DA GÖÇ") == normalise_text("istanbul'da göç")


def test_hash_is_32_hex_characters() -> None:
    digest = text_hash("مرحبا بكم")
    assert len(digest) == 32 and int(digest, 16) >= 0


def test_link_only_posts_stay_distinct() -> None:
    assert text_hash("https://t.co/abc") != text_hash("https://t.co/xyz")
    assert text_hash("RT @a: https://t.co/abc") != text_hash("https://t.co/xyz")
