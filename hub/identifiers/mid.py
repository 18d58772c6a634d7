"""The US manufacturer identification code (MID), built and checked per 19 CFR 102 appendix.

A MID is derived from the manufacturer's name and address, at most 15 characters, no spaces:

1. the ISO 3166 code of the manufacturer's country; Canada uses a province code instead
   (``XO`` Ontario, ``XQ`` Quebec, ...), so a Canadian MID cannot be built without the
   province;
2. the first 3 characters of each of the first two words of the name (one word: its first
   3). The English words a, an, and, of, the are skipped. Adjacent initials form one word
   (``A.B.C. Company`` -> ``ABCCOM``, ``Shavings B L Inc.`` -> ``SHABL``), a hyphenated name
   is one word (``Rawles-Aden Corp.`` -> ``RAWCOR``) and digits count (``20th Century Fox``
   -> ``20TCEN``). Legal forms are *not* dropped, which is why this module has its own
   tokeniser and never uses :mod:`hub.identifiers.normalise`;
3. the first 4 digits of the largest number on the street line (suite and box numbers
   included, punctuation inside a number dropped: ``12,34,56`` -> ``1234``); numbered street
   names (ordinals such as ``250th``) and postcodes do not count; no number, nothing;
4. the first 3 letters of the city (``St Louis`` -> ``STL``).

Decisions the appendix leaves open, made here and tested:

* Non-Latin text is transliterated with anyascii first (NFKC before that, so full-width
  digits are digits). A run of CJK characters transliterates to one word.
* Tokens are separated by whitespace and punctuation other than ``.``, ``-``, ``'``, ``&``
  and ``+``. Hyphens, apostrophes, ``&`` and ``+`` inside a token join it (``AT&T`` ->
  ``ATT``); a lone ``&`` is no word. Periods separate (``Dr.`` is the word ``DR``).
* An initial is a single letter. Runs of adjacent initials, dotted or not, form one word.
  A lone, undotted ``A`` is the English article and is skipped; ``A.`` is an initial.
* Inside a number, one of ``, . - / '`` between digits is dropped (``1-2-3`` -> ``123``).
  Leading zeros do not make a number larger and are not copied (``0012`` -> ``12``).
* Postcodes recognised on a street line: a number after ``ZIP``, ``POSTCODE``, ``PLZ``,
  ``CP``, ``CEP``, ``PIN`` or the Japanese postal mark; a 5-digit ZIP (optionally +4) after
  a US state code; US ZIP+4; ``D-10115`` style prefixed codes; UK and Canadian postcodes.
* A province given with a country other than Canada is ignored. The country may also be
  given directly as a Canadian MID code (``XO``). Province names in English or French and
  the MID codes are accepted as well as the postal abbreviations.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from anyascii import anyascii

from hub.identifiers.countries import (
    CANADIAN_MID_CODES,
    CANADIAN_PROVINCES,
    ISO_COUNTRIES,
    US_STATES,
)
from hub.identifiers.errors import IdentifierError

SCHEME = "MID"

#: The maximum length of a MID.
MAX_MID_LENGTH = 15

#: English words the appendix skips in the name.
NAME_SKIP_WORDS: frozenset[str] = frozenset({"A", "AN", "AND", "OF", "THE"})

#: French names of provinces, accepted by :func:`province_code` besides the English ones.
_FRENCH_PROVINCE_NAMES: dict[str, str] = {
    "COLOMBIEBRITANNIQUE": "BC",
    "NOUVEAUBRUNSWICK": "NB",
    "NOUVELLEECOSSE": "NS",
    "ILEDUPRINCEEDOUARD": "PE",
    "TERRENEUVEETLABRADOR": "NL",
    "TERRENEUVE": "NL",
    "TERRITOIRESDUNORDOUEST": "NT",
}


def _latin(text: str) -> str:
    """NFKC, transliterate to ASCII, upper-case."""
    return anyascii(unicodedata.normalize("NFKC", text)).upper()


@dataclass(frozen=True)
class MidPart:
    """One part of a MID: the characters it gives and why."""

    value: str
    source: str
    explanation: str

    def as_dict(self) -> dict[str, str]:
        return {"value": self.value, "source": self.source, "explanation": self.explanation}


@dataclass(frozen=True)
class MidParts:
    """The four parts of a built MID, each explained."""

    country: MidPart
    name: MidPart
    street: MidPart
    city: MidPart

    @property
    def mid(self) -> str:
        return self.country.value + self.name.value + self.street.value + self.city.value

    def as_dict(self) -> dict[str, Any]:
        """``{"mid": ..., "parts": {"country": {...}, "name": ..., ...}}``, for JSON."""
        return {
            "mid": self.mid,
            "parts": {
                "country": self.country.as_dict(),
                "name": self.name.as_dict(),
                "street": self.street.as_dict(),
                "city": self.city.as_dict(),
            },
        }


# --- country -------------------------------------------------------------------------------

def _letters(text: str) -> str:
    return "".join(ch for ch in _latin(text) if "A" <= ch <= "Z")


def province_code(province: str) -> str:
    """The MID code (``XO``) for a Canadian province given by abbreviation, code or name."""
    key = _letters(province)
    if key in CANADIAN_PROVINCES:
        return CANADIAN_PROVINCES[key][0]
    if key in CANADIAN_MID_CODES:
        return key
    for abbreviation, (code, name) in CANADIAN_PROVINCES.items():
        if key == _letters(name) or _FRENCH_PROVINCE_NAMES.get(key) == abbreviation:
            return code
    if key == "NEWFOUNDLAND":
        return CANADIAN_PROVINCES["NL"][0]
    raise IdentifierError(
        SCHEME, "province", province,
        "not a Canadian province or territory; use one of " + ", ".join(CANADIAN_PROVINCES),
    )


def _country_part(country: str, province: str | None) -> MidPart:
    code = _latin(country).strip()
    if code in CANADIAN_MID_CODES:
        return MidPart(code, country, "Canadian province code given directly")
    if code not in ISO_COUNTRIES:
        raise IdentifierError(
            SCHEME, "country", country, "expected an ISO 3166 alpha-2 country code, e.g. US"
        )
    if code != "CA":
        return MidPart(code, country, "ISO 3166 code of the manufacturer's country")
    if province is None or not province.strip():
        raise IdentifierError(
            SCHEME, "province_required", country,
            "a Canadian MID starts with the province code (XA Alberta ... XY Yukon): "
            "give the province, e.g. ON",
        )
    mid_code = province_code(province)
    name = next(name for code, name in CANADIAN_PROVINCES.values() if code == mid_code)
    return MidPart(mid_code, province, f"Canada uses province codes: {mid_code} is {name}")


# --- name ------------------------------------------------------------------------------------

_NAME_SEPARATORS = re.compile(r"[^A-Z0-9.\-'&+]+")
_NAME_JOINERS = re.compile(r"[\-'&+]")


def name_words(name: str) -> list[str]:
    """The words of a manufacturer name as the MID appendix counts them.

    Legal forms are kept, the English words a, an, and, of, the are dropped and adjacent
    initials are joined: ``"Dr. S.A. Smith"`` -> ``["DR", "SA", "SMITH"]``.
    """
    pieces: list[tuple[str, bool]] = []  # (piece, followed by a period)
    for raw in _NAME_SEPARATORS.split(_latin(name)):
        segments = _NAME_JOINERS.sub("", raw).split(".")
        for index, segment in enumerate(segments):
            if segment:
                pieces.append((segment, index < len(segments) - 1))

    words: list[str] = []
    initials: list[tuple[str, bool]] = []

    def flush() -> None:
        if not initials:
            return
        bare_article = len(initials) == 1 and not initials[0][1] and initials[0][0] == "A"
        if not bare_article:
            words.append("".join(letter for letter, _ in initials))
        initials.clear()

    for piece, dotted in pieces:
        if len(piece) == 1 and piece.isalpha():
            initials.append((piece, dotted))
            continue
        flush()
        if piece not in NAME_SKIP_WORDS:
            words.append(piece)
    flush()
    return words


def _name_part(name: str) -> MidPart:
    words = name_words(name)
    if not words:
        raise IdentifierError(
            SCHEME, "name", name, "the name has no word left after skipping a, an, and, of, the"
        )
    used = words[:2]
    value = "".join(word[:3] for word in used)
    return MidPart(
        value, name,
        f"first 3 characters of the first {'two words' if len(used) == 2 else 'word'} "
        f"{' '.join(used)} (a, an, and, of, the skipped; adjacent initials joined)",
    )


# --- street ----------------------------------------------------------------------------------

_STATES = "|".join(sorted(US_STATES))
_POSTCODE_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(pattern, re.ASCII)
    for pattern in (
        # a code after a word that announces it: "ZIP 41018", "PLZ 10115", "CEP 01310-100"
        r"\b(?:ZIP\s*CODE|ZIP|POST\s*CODE|POSTAL\s+CODE|PLZ|C\.?\s?P\.?|CEP|PIN\s*CODE|PIN)"
        r"\s*[:.#]?\s*[A-Z]{0,2}-?\d+(?:-\d+|\s\d{3}\b)?",
        # a US ZIP after a state code: "KY 41018", "KY 41018-1234"
        rf"(?<=\b(?:{_STATES}))\s+\d{{5}}(?:-\d{{4}})?\b",
        # US ZIP+4 anywhere
        r"\b\d{5}-\d{4}\b",
        # European codes with the country's vehicle letters: "D-10115", "CH-8000", "F-75008"
        r"\b(?:A|B|CH|CZ|D|DK|E|F|FIN|FL|GR|H|HR|I|L|LT|LV|N|NL|P|PL|RO|S|SK|SLO)-\d{4,5}\b",
        # UK postcodes ("SW1A 2AA"), never taking an ordinal ("A1 2ND") for the inward code
        r"\b[A-Z]{1,2}\d[A-Z\d]?\s*(?!\d(?:ST|ND|RD|TH)\b)\d[ABD-HJLNP-UW-Z]{2}\b",
        # Canadian postcodes: "K1A 0B1"
        r"\b[A-Z]\d[A-Z]\s?\d[A-Z]\d\b",
    )
)
_NUMBER = re.compile(r"\d+(?:[,.\-/']\d+)*", re.ASCII)
_ORDINAL_SUFFIX = re.compile(r"(?:ST|ND|RD|TH)(?![A-Z])", re.ASCII)


def street_numbers(street: str) -> tuple[list[str], list[str]]:
    """The numbers that count on a street line, and the ones ignored (ordinals, postcodes)."""
    text = _latin(street.replace("〒", " ZIP "))
    ignored: list[str] = []
    for pattern in _POSTCODE_PATTERNS:
        for match in pattern.finditer(text):
            ignored.append(match.group().strip())
        text = pattern.sub(" ", text)
    counted: list[str] = []
    for match in _NUMBER.finditer(text):
        digits = re.sub(r"[^0-9]", "", match.group())
        if _ORDINAL_SUFFIX.match(text, match.end()):
            ignored.append(match.group() + text[match.end(): match.end() + 2])
            continue
        counted.append(digits.lstrip("0") or "0")
    return counted, ignored


def _street_part(street: str) -> MidPart:
    counted, ignored = street_numbers(street)
    note = f"; ignored {', '.join(ignored)} (numbered street or postcode)" if ignored else ""
    if not counted:
        return MidPart("", street, "no number on the street line" + note)
    # compare by length then digits: no int() so that very long numbers stay cheap
    largest = max(counted, key=lambda digits: (len(digits), digits))
    return MidPart(
        largest[:4], street,
        f"first 4 digits of the largest number {largest} on the street line{note}",
    )


# --- city ------------------------------------------------------------------------------------

def _city_part(city: str) -> MidPart:
    letters = _letters(city)
    if not letters:
        raise IdentifierError(SCHEME, "city", city, "the city has no letter")
    return MidPart(letters[:3], city, "first 3 letters of the city")


# --- public API ------------------------------------------------------------------------------

def explain_mid(
    name: str, street: str, city: str, country: str, province: str | None = None
) -> MidParts:
    """Build a MID and explain each of its parts; see the module docstring for the rules."""
    parts = MidParts(
        country=_country_part(country, province),
        name=_name_part(name),
        street=_street_part(street),
        city=_city_part(city),
    )
    assert len(parts.mid) <= MAX_MID_LENGTH
    return parts


def build_mid(
    name: str, street: str, city: str, country: str, province: str | None = None
) -> str:
    """Build the MID for a manufacturer: ``build_mid("DHL Express", ...) == "USDHLEXP1304ERL"``.

    Raises :class:`IdentifierError` with rule ``province_required`` for Canada without a
    province, ``country``/``province`` for unknown codes, ``name``/``city`` when they give
    no character.
    """
    return explain_mid(name, street, city, country, province).mid


_MID_SHAPE = re.compile(r"[A-Z0-9]+")


def validate_mid(value: str) -> str:
    """Check a MID's shape and return it upper-cased; raise :class:`IdentifierError` if bad.

    A MID is 3 to 15 letters and digits, no spaces, starting with an ISO 3166 code or a
    Canadian province code (``CA`` itself is wrong: Canada uses province codes).
    """
    if not isinstance(value, str):
        raise IdentifierError(SCHEME, "type", value, "expected a string")
    text = (value if value.isascii() else unicodedata.normalize("NFKC", value)).strip().upper()
    if not text:
        raise IdentifierError(SCHEME, "empty", value, "the value is empty")
    if text.split() != [text]:  # holds whitespace (str.split splits on str.isspace)
        raise IdentifierError(SCHEME, "pattern", value, "a MID has no spaces")
    if not (text.isascii() and _MID_SHAPE.fullmatch(text)):
        raise IdentifierError(SCHEME, "pattern", value, "a MID has only letters and digits")
    if not 3 <= len(text) <= MAX_MID_LENGTH:
        raise IdentifierError(
            SCHEME, "length", value, f"a MID has 3 to {MAX_MID_LENGTH} characters"
        )
    prefix = text[:2]
    if prefix == "CA":
        raise IdentifierError(
            SCHEME, "country", value, "Canadian MIDs start with a province code (XA ... XY)"
        )
    if prefix not in ISO_COUNTRIES and prefix not in CANADIAN_MID_CODES:
        raise IdentifierError(
            SCHEME, "country", value,
            f"{prefix!r} is neither an ISO 3166 code nor a Canadian province code",
        )
    return text
