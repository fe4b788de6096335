"""Language codes (ISO 639-1), aliases found in real corpora, script direction and detection."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core.study import LANGUAGE_ALIASES

# ISO 639-1 codes with English names (all 183 current codes).
_ISO_639_1 = """
aa Afar|ab Abkhazian|ae Avestan|af Afrikaans|ak Akan|am Amharic|an Aragonese|ar Arabic|as Assamese|av Avaric|
ay Aymara|az Azerbaijani|ba Bashkir|be Belarusian|bg Bulgarian|bi Bislama|bm Bambara|bn Bengali|bo Tibetan|
br Breton|bs Bosnian|ca Catalan|ce Chechen|ch Chamorro|co Corsican|cr Cree|cs Czech|cu Church Slavic|
cv Chuvash|cy Welsh|da Danish|de German|dv Divehi|dz Dzongkha|ee Ewe|el Greek|en English|eo Esperanto|
es Spanish|et Estonian|eu Basque|fa Persian|ff Fulah|fi Finnish|fj Fijian|fo Faroese|fr French|
fy Western Frisian|ga Irish|gd Scottish Gaelic|gl Galician|gn Guarani|gu Gujarati|gv Manx|ha Hausa|
he Hebrew|hi Hindi|ho Hiri Motu|hr Croatian|ht Haitian|hu Hungarian|hy Armenian|hz Herero|ia Interlingua|
id Indonesian|ie Interlingue|ig Igbo|ii Sichuan Yi|ik Inupiaq|io Ido|is Icelandic|it Italian|iu Inuktitut|
ja Japanese|jv Javanese|ka Georgian|kg Kongo|ki Kikuyu|kj Kuanyama|kk Kazakh|kl Kalaallisut|km Khmer|
kn Kannada|ko Korean|kr Kanuri|ks Kashmiri|ku Kurdish|kv Komi|kw Cornish|ky Kyrgyz|la Latin|
lb Luxembourgish|lg Ganda|li Limburgish|ln Lingala|lo Lao|lt Lithuanian|lu Luba-Katanga|lv Latvian|
mg Malagasy|mh Marshallese|mi Maori|mk Macedonian|ml Malayalam|mn Mongolian|mr Marathi|ms Malay|mt Maltese|
my Burmese|na Nauru|nb Norwegian Bokmål|nd North Ndebele|ne Nepali|ng Ndonga|nl Dutch|nn Norwegian Nynorsk|
no Norwegian|nr South Ndebele|nv Navajo|ny Chichewa|oc Occitan|oj Ojibwa|om Oromo|or Oriya|os Ossetian|
pa Punjabi|pi Pali|pl Polish|ps Pashto|pt Portuguese|qu Quechua|rm Romansh|rn Rundi|ro Romanian|ru Russian|
rw Kinyarwanda|sa Sanskrit|sc Sardinian|sd Sindhi|se Northern Sami|sg Sango|si Sinhala|sk Slovak|
sl Slovenian|sm Samoan|sn Shona|so Somali|sq Albanian|sr Serbian|ss Swati|st Southern Sotho|su Sundanese|
sv Swedish|sw Swahili|ta Tamil|te Telugu|tg Tajik|th Thai|ti Tigrinya|tk Turkmen|tl Tagalog|tn Tswana|
to Tonga|tr Turkish|ts Tsonga|tt Tatar|tw Twi|ty Tahitian|ug Uyghur|uk Ukrainian|ur Urdu|uz Uzbek|
ve Venda|vi Vietnamese|vo Volapük|wa Walloon|wo Wolof|xh Xhosa|yi Yiddish|yo Yoruba|za Zhuang|zh Chinese|
zu Zulu
"""

LANGUAGE_NAMES: dict[str, str] = dict(
    entry.strip().split(" ", 1) for entry in _ISO_639_1.replace("\n", "").split("|") if entry.strip()
)

ALIASES = LANGUAGE_ALIASES  # in -> id and friends, shared with the worker (core/study.py)

#: Languages whose script is written right to left.
RTL_LANGUAGES: frozenset[str] = frozenset({"ar", "he", "fa", "ur", "ps", "sd", "ug", "yi", "dv", "ku"})


class UnknownLanguageError(ValueError):
    """A language code that is not ISO 639-1 (nor a known alias of one)."""


def normalise_language(raw: str) -> str:
    """Map a code as found in a file (`EN`, `en-US`, `in`, `pt_BR`) to ISO 639-1, or raise."""
    code = raw.strip().lower().replace("_", "-")
    if code in ALIASES:
        return ALIASES[code]
    if code in LANGUAGE_NAMES:
        return code
    base = code.split("-", 1)[0]
    if base in ALIASES:
        return ALIASES[base]
    if base in LANGUAGE_NAMES:
        return base
    raise UnknownLanguageError(f"'{raw}' is not an ISO 639-1 language code (such as en, es, ar, hi)")


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


def is_rtl(code: str) -> bool:
    return code in RTL_LANGUAGES


@dataclass(frozen=True)
class Detection:
    language: str
    confidence: float


class LanguageDetector:
    """py3langid (its model ships in the package) restricted to ISO 639-1 and, where given, the
    project's languages, so a short post cannot come back as a language nobody asked for."""

    def __init__(self, languages: Iterable[str] = ()) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        self._identifier: Any = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        supported = [code for code in self._identifier.labels if code in LANGUAGE_NAMES]
        wanted = [code for code in languages if code in supported]
        self.languages: list[str] = wanted if len(wanted) >= 2 else supported
        self._identifier.set_languages(self.languages)

    def detect(self, text: str) -> Detection:
        code, confidence = self._identifier.classify(text)
        return Detection(language=str(code), confidence=round(float(confidence), 4))
