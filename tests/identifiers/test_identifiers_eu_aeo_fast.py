"""The usual EU AEO number takes a shortcut; whatever it is, the answer is `parse_eu_aeo`'s."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.identifiers import IdentifierError, get_scheme, parse_eu_aeo
from hub.identifiers.eu_aeo import eu_aeo_warnings
from hub.identifiers.schemes import Validated


def _parsed(value: str) -> Any:
    try:
        number = parse_eu_aeo(value)
    except IdentifierError as exc:
        return ("refused", exc.rule)
    return Validated(number.number, eu_aeo_warnings(number))


def _checked(value: str) -> Any:
    try:
        return get_scheme("EU_AEO").validate(value)
    except IdentifierError as exc:
        return ("refused", exc.rule)


_PARTS = st.sampled_from(["DE", "de", "XI", "GB", "US", "NL", "AEOF", "aeoc", "AEOS", "AEOX",
                          " ", "  ", "/", "-", "0", "12", "A", "z", "\t", "é", "\uff24\uff25",
                          "\x7f", "00025/08", "1" * 30])


@settings(max_examples=400, deadline=None)
@given(st.lists(_PARTS, max_size=8).map("".join))
def test_the_shortcut_answers_as_parse_eu_aeo(value: str) -> None:
    assert _checked(value) == _parsed(value)


def test_usual_and_unusual_numbers() -> None:
    for value in ("DEAEOF00025/08", "de aeoc 1", "XIAEOS1", "DEAEOF" + "1" * 29,
                  "DEAEOF" + "1" * 30, "DEAEOF//", "DEAEOF", "USAEOF1", "DEAEOX1"):
        assert _checked(value) == _parsed(value)
    assert _checked("DEAEOF" + "1" * 30).warnings  # longer than 35: still warned
