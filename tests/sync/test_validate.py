"""The one record validator, property-based against the rules of the domain: EORI and
its country prefix, statuses, the programme's categories, dates in order, identifiers
with check digits (USCC, Japanese corporate number), text without control characters."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import CanonicalRecord, CategoryEntry, IdentifierEntry
from hub.registry.models import STATUSES
from hub.registry.service import OperatorData
from hub.sync.validate import ProgrammeRules, Rejection, record_from_dict, record_to_dict, validate

EU = ProgrammeRules("EU-AEO", "EORI", "EORI", "EU_AEO", frozenset({"AEOC", "AEOS", "AEOF"}))
COUNTRIES = ["DE", "FR", "IE", "NL", "XI"]

eoris = st.builds(lambda c, n: f"{c}{n}", st.sampled_from(COUNTRIES),
                  st.text(string.digits, min_size=5, max_size=15))
dates = st.dates().map(lambda d: d.isoformat())
categories = st.lists(
    st.builds(CategoryEntry, st.sampled_from(sorted(EU.categories)),
              st.sampled_from(STATUSES), st.one_of(st.none(), dates)),
    max_size=3, unique_by=lambda c: c.code)


@st.composite
def valid_records(draw):
    eori = draw(eoris)
    country = eori[:2] if eori[:2] != "XI" else "GB"
    start, end = sorted(draw(st.lists(st.dates(), min_size=2, max_size=2)))
    return CanonicalRecord(
        programme="EU-AEO", authorisation_number=f"{eori[:2]}AEOF{draw(st.integers(1, 99999))}",
        trader_id_scheme="EORI", trader_id=f" {eori.lower()} " if draw(st.booleans()) else eori,
        legal_name=draw(st.text(string.ascii_letters + " &-.", min_size=1, max_size=300)
                        .filter(str.strip)),
        country=draw(st.sampled_from([country, country.lower(), f" {country} "])),
        status=draw(st.sampled_from([*STATUSES, "VALID", " Suspended "])),
        categories=tuple(draw(categories)), valid_from=start.isoformat(),
        valid_until=end.isoformat(), consent_share=draw(st.sampled_from(
            [True, False, "yes", "no", "1", "0", None])))


@settings(max_examples=150, deadline=None)
@given(valid_records())
def test_a_record_within_the_rules_is_accepted_and_normalised(record):
    result = validate(record, EU)
    assert isinstance(result, OperatorData), getattr(result, "reasons", None)
    values = result.values
    assert result.stable_key == values["trader_id"] == record.trader_id.strip().upper()
    assert values["country"] == record.country.strip().upper()
    assert values["status"] == record.status.strip().lower() in STATUSES
    assert [c["code"] for c in values["categories"]] == sorted(
        c.code for c in record.categories)
    assert values["valid_from"] <= values["valid_until"]
    assert (result.identifiers[0][:2]) == ("EORI", result.stable_key)


BREAKS = {
    "status": ("sleeping", "invalid_status"),
    "country": ("Germany", "invalid_country"),
    "valid_from": ("2019-02-30", "invalid_date"),
    "legal_name": ("x" * 301, "too_long"),
    "street": ("Hafen\x00strasse", "control_characters"),
    "city": ("Ham\ud800burg", "undecodable"),
    "issuing_authority": ("Zollamt M\ufffdnchen", "undecodable"),  # lost in decoding
    "trader_id_scheme": ("USCC", "wrong_scheme"),
    "consent_share": ("perhaps", "invalid_flag"),
    "changed_at": ("yesterday", "invalid_timestamp"),
    "authorisation_number": (None, "missing"),
}


@settings(max_examples=150, deadline=None)
@given(valid_records(), st.sampled_from(sorted(BREAKS)))
def test_a_record_breaking_one_rule_is_rejected_naming_it_and_still_tied(record, name):
    value, code = BREAKS[name]
    broken = record_from_dict({**record_to_dict(record), name: value})
    result = validate(broken, EU)
    assert isinstance(result, Rejection)
    assert [(r["code"], r["field"]) for r in result.reasons] == [(code, name)]
    assert result.stable_key == record.trader_id.strip().upper()  # it can be tied


@settings(max_examples=100, deadline=None)
@given(valid_records())
def test_categories_must_be_the_programmes_and_listed_once(record):
    odd = CategoryEntry("AEOX", "valid", None)
    twice = (CategoryEntry("AEOC", "valid", None), CategoryEntry("aeoc", "valid", None))
    for cats, code in (((odd,), "unknown_category"), (twice, "repeated_category")):
        result = validate(record_from_dict({**record_to_dict(record), "categories": [
            {"code": c.code, "status": c.status, "since": c.since} for c in cats]}), EU)
        assert isinstance(result, Rejection) and result.code == code


def test_dates_out_of_order_are_refused():
    record = CanonicalRecord(programme="EU-AEO", authorisation_number="DEAEOF1/19",
                             trader_id_scheme="EORI", trader_id="DE123456789012345",
                             legal_name="A GmbH", country="DE", status="valid",
                             valid_from="2024-01-02", valid_until="2024-01-01")
    result = validate(record, EU)
    assert isinstance(result, Rejection) and result.code == "dates_out_of_order"


@pytest.mark.parametrize(("country", "code"), [
    ("ZZ", "invalid_country"), ("QQ", "invalid_country"), ("D", "invalid_country"),
    ("de", None), ("XI", None), ("XK", None)])
def test_a_country_is_an_assigned_code(country, code):
    """ISO 3166 codes, and the user-assigned ones customs use (XI, XK); not any pair."""
    result = validate(CanonicalRecord(
        programme="EU-AEO", authorisation_number="DEAEOF1/19", trader_id_scheme="EORI",
        trader_id="DE123456789012345", legal_name="A GmbH", country=country,
        status="valid"), EU)
    if code is None:
        assert isinstance(result, OperatorData) and result.values["country"] == country.upper()
    else:
        assert isinstance(result, Rejection) and result.code == code


def test_identifiers_with_check_digits_are_checked():
    base: dict[str, Any] = {"programme": "EU-AEO", "authorisation_number": "DEAEOF1/19",
            "trader_id_scheme": "EORI", "trader_id": "DE123456789012345",
            "legal_name": "A GmbH", "country": "DE", "status": "valid"}
    good = validate(CanonicalRecord(**base, identifiers=(
        IdentifierEntry("CN_USCC", "91110000600037341L"),
        IdentifierEntry("JP_CN", "5835678256246"))), EU)
    assert isinstance(good, OperatorData)
    assert {("CN_USCC", "91110000600037341L"), ("JP_CN", "5835678256246")} <= {
        i[:2] for i in good.identifiers}
    for scheme, value in (("CN_USCC", "91110000600037341X"), ("JP_CN", "2835678256246")):
        bad = validate(CanonicalRecord(**base, identifiers=(
            IdentifierEntry(scheme, value),)), EU)
        assert isinstance(bad, Rejection) and bad.code == "invalid_identifier"
        assert (scheme, value) in bad.identifiers  # loosely kept, for tying


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(
    st.sampled_from([n for n in CanonicalRecord.__slots__
                     if n not in ("categories", "identifiers", "problems", "fingerprint")]),
    st.one_of(st.none(), st.text(max_size=40), st.booleans(), st.integers())))
def test_any_values_give_an_answer_never_an_exception(values):
    result = validate(CanonicalRecord(**values), EU)
    assert isinstance(result, OperatorData | Rejection)
    if isinstance(result, Rejection):
        assert result.reasons and all(r["code"] and r["reason"] for r in result.reasons)
