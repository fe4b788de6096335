"""Normalised text and its hash, so that duplicates and retweets of one post collapse into one."""

import hashlib
import re
import unicodedata

_RETWEET_PREFIX = re.compile(r"^(?:rt\s+@\w+:?\s*)+", re.IGNORECASE)
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """NFKC, case-folded (Turkish i unified), without retweet prefixes or links, with whitespace collapsed."""
    if text.isascii():  # NFKC and the Turkish fix change nothing in ASCII: skip them (imports hash millions)
        folded = text.lower()
    else:
        # Turkish dotted and dotless i fold differently in case; treat them as one letter.
        folded = unicodedata.normalize("NFKC", text).casefold().replace("\u0307", "").replace("ı", "i")
    folded = _RETWEET_PREFIX.sub("", folded.strip())
    folded = _URL.sub(" ", folded)
    return _SPACE.sub(" ", folded).strip()


def text_hash(text: str) -> str:
    """32 hex characters identifying a post's normalised text. A post that is nothing but links or a retweet
    prefix normalises to nothing: it is hashed as written, so distinct link-only posts stay distinct."""
    normalised = normalise_text(text) or "\x00raw:" + text.strip().casefold()
    return hashlib.blake2b(normalised.encode("utf-8"), digest_size=16).hexdigest()
