"""Matching normalisers for names and addresses (not identifiers, not the MID builder).

These functions turn the many spellings of the same operator into one comparable form, so
that a partner's record can be matched to ours. They are deterministic and lossy on
purpose: the output is a match key, never something to show or send.

:func:`normalise_name`:

1. removes legal forms written in CJK (``有限公司``, ``株式会社``, ``주식회사``) and Cyrillic
   (OOO, TOV written in Cyrillic) script, which transliteration would glue to the name or blur;
2. applies NFKC and transliterates to ASCII with anyascii, then casefolds;
3. writes ``&`` and ``+`` as ``and``; drops apostrophes; joins dotted initials
   (``S.p.A.`` -> ``spa``) and letters around a slash (``A/S`` -> ``as``); every other
   punctuation character separates words;
4. joins runs of single letters (``B V`` -> ``bv``);
5. canonicalises abbreviations (``intl`` -> ``international``, ``mfg`` ->
   ``manufacturing``, ``&``/``und``/``et`` -> ``and``);
6. removes legal forms from the end, repeatedly (``GmbH & Co. KG``, ``Co., Ltd.``,
   ``AB (publ)``) and from the start (``PT``, ``OOO``, ``Kabushiki Kaisha``, ``The``),
   never removing the last word; a trailing ``and`` goes with them.

The result is idempotent: normalising a normalised name changes nothing.

The tables live in :mod:`hub.identifiers.legal_forms`.
"""

from __future__ import annotations

import re
import unicodedata

from anyascii import anyascii

from hub.identifiers.legal_forms import (
    CITY_ABBREVIATIONS,
    CYRILLIC_LEGAL_FORMS,
    HOUSE_NUMBER_WORDS,
    NAME_ABBREVIATIONS,
    NATIVE_LEGAL_FORMS,
    NATIVE_SUFFIX_FORMS,
    PREFIX_LEGAL_FORMS,
    STREET_ABBREVIATIONS,
    STREET_SUFFIXES,
    SUFFIX_LEGAL_FORMS,
)

_CYRILLIC_FORM = re.compile(
    r"(?<!\w)(?:" + "|".join(sorted(CYRILLIC_LEGAL_FORMS, key=len, reverse=True)) + r")(?!\w)",
    re.IGNORECASE,
)
_SLASH_BETWEEN_LETTERS = re.compile(r"(?<![a-z0-9])([a-z])\s*/\s*([a-z])(?![a-z0-9])")
_AMPERSAND_INITIALS = re.compile(r"(?<![a-z0-9])([a-z]{1,2})&([a-z]{1,2})(?![a-z0-9])")
_WORD_CHARACTERS = re.compile(r"[a-z0-9.]+")
_MAX_FORM_LENGTH = max(len(form) for form in SUFFIX_LEGAL_FORMS | PREFIX_LEGAL_FORMS)


def _ascii(text: str) -> str:
    """NFKC, transliterate to ASCII, casefold."""
    return anyascii(unicodedata.normalize("NFKC", text)).casefold()


def _split_dotted(word: str) -> list[str]:
    """Split a word on periods, joining runs of single characters (``s.p.a`` -> ``spa``)."""
    tokens: list[str] = []
    run = ""
    for segment in word.split("."):
        if len(segment) == 1:
            run += segment
            continue
        if run:
            tokens.append(run)
            run = ""
        if segment:
            tokens.append(segment)
    if run:
        tokens.append(run)
    return tokens


def _join_single_letters(tokens: list[str]) -> list[str]:
    """Join runs of two or more single-letter tokens: ``["b", "v"]`` -> ``["bv"]``."""
    joined: list[str] = []
    run: list[str] = []
    for token in [*tokens, ""]:
        if len(token) == 1 and token.isalpha():
            run.append(token)
            continue
        if run:
            joined.append("".join(run))
            run = []
        if token:
            joined.append(token)
    return joined


def _words(text: str) -> list[str]:
    """Lower-case ASCII words of ``text``, with dotted initials joined."""
    text = _AMPERSAND_INITIALS.sub(r"\1\2", text)  # "at&t" -> "att", "h&m" -> "hm"
    text = text.replace("&", " and ").replace("+", " and ")
    text = text.replace("'", "").replace("`", "")
    text = _SLASH_BETWEEN_LETTERS.sub(r"\1\2", text)
    tokens: list[str] = []
    for word in _WORD_CHARACTERS.findall(text):
        tokens.extend(_split_dotted(word))
    return tokens


def _strip_native_forms(name: str) -> str:
    name = unicodedata.normalize("NFKC", name)
    for form in NATIVE_LEGAL_FORMS:
        name = name.replace(form, " ")
    stripped = name.rstrip()
    for form in NATIVE_SUFFIX_FORMS:
        if stripped.endswith(form) and stripped[: -len(form)].strip():
            stripped = stripped[: -len(form)]
    return _CYRILLIC_FORM.sub(" ", stripped)


def _strip_legal_forms(tokens: list[str]) -> list[str]:
    """Remove legal forms from both ends, never the last remaining word."""
    changed = True
    while changed:
        changed = False
        for size in range(min(_MAX_FORM_LENGTH, len(tokens) - 1), 0, -1):
            if tuple(tokens[-size:]) in SUFFIX_LEGAL_FORMS:
                tokens = tokens[:-size]
                changed = True
                break
            if tuple(tokens[:size]) in PREFIX_LEGAL_FORMS:
                tokens = tokens[size:]
                changed = True
                break
        if len(tokens) > 1 and tokens[-1] == "and":
            tokens = tokens[:-1]
            changed = True
    return tokens


def name_tokens(name: str) -> list[str]:
    """The normalised words of a company name; see the module docstring for the steps."""
    if not name:
        return []
    cleaned = _strip_native_forms(name)
    tokens = _join_single_letters(_words(_ascii(cleaned)))
    if not tokens:
        # everything was a legal form in native script: keep it rather than return nothing
        tokens = _join_single_letters(_words(_ascii(name)))
    # canonicalise before stripping, so that "und Co." and "et Cie" meet the table's "and"
    tokens = [NAME_ABBREVIATIONS.get(token, token) for token in tokens]
    return _strip_legal_forms(tokens)


def normalise_name(name: str) -> str:
    """A company name as a match key.

    ``"Müller & Söhne GmbH & Co. KG"`` -> ``"muller and sohne"``.
    """
    return " ".join(name_tokens(name))


_NUMBER_TOKEN = re.compile(r"\d+(?:[-/]\d+)*[a-z]?")


def _street_token(token: str) -> str:
    if token in STREET_ABBREVIATIONS:
        return STREET_ABBREVIATIONS[token]
    for ending, short in STREET_SUFFIXES:
        if token.endswith(ending) and len(token) > len(ending):
            return token[: -len(ending)] + short
    return token


def normalise_street(street: str) -> str:
    """A street line as a match key: ``"Hauptstraße 5"`` -> ``"hauptstr 5"``.

    Street-type words become their abbreviation (street -> st, road -> rd, avenue -> ave,
    boulevard -> blvd, Straße/Strasse/Str. -> str, also at the end of compound words),
    directions are shortened (north -> n), house numbers are kept (``12-14`` stays one
    token), and ``No.``/``Nr.`` before a number is dropped.
    """
    text = _ascii(street)
    text = re.sub(r"(?<=\d)\s*([-/])\s*(?=\d)", r"\1", text)  # "12 - 14" -> "12-14"
    text = text.replace("'", "")
    words: list[str] = []
    for word in re.findall(r"\d+(?:[-/]\d+)+|[a-z0-9.]+", text):
        words.extend([word] if word[0].isdigit() and "." not in word else _split_dotted(word))
    words = _join_single_letters(words)
    tokens: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        following = words[index + 1] if index + 1 < len(words) else ""
        if words[index : index + 3] == ["post", "office", "box"]:
            tokens += ["po", "box"]
            index += 3
            continue
        if word == "pob":
            tokens += ["po", "box"]
        elif not (word in HOUSE_NUMBER_WORDS and _NUMBER_TOKEN.fullmatch(following)):
            tokens.append(_street_token(word))
        index += 1
    return " ".join(tokens)


def normalise_city(city: str) -> str:
    """A city name as a match key: ``"St. Louis"`` and ``"Saint-Louis"`` -> ``"saint louis"``."""
    text = _ascii(city).replace("'", "")
    tokens = re.findall(r"[a-z0-9]+", text)
    return " ".join(CITY_ABBREVIATIONS.get(token, token) for token in tokens)


def normalise_postcode(postcode: str) -> str:
    """A postcode as a match key: letters and digits only, upper case.

    ``"sw1a 2aa"`` -> ``"SW1A2AA"``, ``"〒100-0001"`` -> ``"1000001"``.
    """
    return re.sub(r"[^A-Z0-9]", "", _ascii(postcode).upper())
