"""Crosswalk: the code to declare, for every programme that defines one, from programme data."""

from __future__ import annotations

import datetime as dt

import pytest

from hub.arrangements.reference import load_reference
from hub.errors import NotFound
from hub.recognition.crosswalk import crosswalk

_DATA = load_reference()
ENTRIES = [(p.code, d) for p in _DATA.programmes.values() for d in p.declaration_codes]
SAMPLES = {"MID": "DEMUSLOG12HAM", "EU_AEO": "DEAEOF1234/16", "EORI": "DE123456789012345",
           "TCUIN": "US123456789", "CN_CUSTOMS": "1234567890", "SG_AEO": "AEOSG123456789012",
           "MY_AEO": "MY123456789012", "BN_AEO": "SLMSBN-123456-789", "BY_UNP": "190000000"}


@pytest.mark.parametrize(("programme", "entry"), ENTRIES,
                         ids=[f"{p}>{d.declared_in}" for p, d in ENTRIES])
def test_every_declaration_code(session, add_operator, programme, entry):
    value = SAMPLES.get(entry.scheme, "X12345")
    country = "SG" if programme == "SG-STP" else "DE"
    primary = _DATA.programmes[programme].primary_identifier
    op = add_operator(programme, value if primary == entry.scheme else "KEY1", country=country,
                      identifiers=[(entry.scheme, value, "declared", True)])
    declared_in = "EU" if entry.declared_in == "*" else entry.declared_in
    answer = crosswalk(session, op.id, declared_in)
    assert answer.codes, answer.warnings
    expected = entry.render(value, country)
    assert {k: answer.codes[0][k] for k in expected} == expected


def test_eu_aeo_in_the_us_uses_linked_mids_only(session, add_operator):
    op = add_operator("EU-AEO", "DE123456789012345",
                      identifiers=[("MID", "DEMUSLOG12HAM", "declared", True),
                                   ("MID", "DEMUSLOG99HAM", "derived", False)])
    answer = crosswalk(session, op.id, "US")
    assert [c["code"] for c in answer.codes] == ["DEMUSLOG12HAM"]
    assert answer.arrangements == ["EU-US"]
    bare = add_operator("EU-AEO", "FR53740792600014", country="FR",
                        identifiers=[("MID", "FRX99HAM", "derived", False)])
    missing = crosswalk(session, bare.id, "US")
    assert missing.codes == []
    assert "No MID is linked" in missing.warnings[0]


def test_specific_formats(session, add_operator):
    sg = add_operator("SG-STP", "197401143C", country="SG",
                      identifiers=[("SG_AEO", "AEOSG123456789012", "declared", True)])
    assert crosswalk(session, sg.id, "CN").codes[0]["code"] == "SG123456789012"
    cn = add_operator("CN-AEO", "1234567890", country="CN")
    tradenet = crosswalk(session, cn.id, "SG").codes[0]
    assert (tradenet["cpc"], tradenet["pc1"], tradenet["pc2"]) == ("AEO", "CN", "1234567890")
    assert crosswalk(session, cn.id, "JP").codes[0]["code"] == "CN1234567890"
    us = add_operator("US-CTPAT", "12345678", country="US")
    assert "TCUIN" in crosswalk(session, us.id, "EU").warnings[0]


def test_no_entry_and_unknown_administration(session, add_operator):
    op = add_operator("KR-AEO", "1168200276", country="KR")
    assert "defines no code" in crosswalk(session, op.id, "US").warnings[0]
    with pytest.raises(NotFound):
        crosswalk(session, op.id, "ZZ")


def test_eu_aeo_declared_in_china_uses_the_authorisation_number(session, add_operator):
    op = add_operator("EU-AEO", "DE123456789012345", identifiers=[])
    op.authorisation_number = "DEAEOF1234/16"
    session.flush()
    answer = crosswalk(session, op.id, "CN")
    assert answer.codes, answer.warnings
    assert answer.codes[0]["value"] == "DEAEOF1234/16"
    assert not any("EU_AEO" in w for w in answer.warnings)


def test_only_arrangements_active_on_the_day_are_named(session, add_operator):
    """Cambodia has not implemented the ASEAN MRA; EU-CA starts on 2025-08-01."""
    sg = add_operator("SG-STP", "AEOSG123456789012", country="SG")
    assert crosswalk(session, sg.id, "MY", dt.date(2026, 6, 1)).arrangements == ["ASEAN"]
    assert crosswalk(session, sg.id, "KH", dt.date(2026, 6, 1)).arrangements == []
    eu = add_operator("EU-AEO", "DE123456789012345")
    assert crosswalk(session, eu.id, "CA", dt.date(2025, 7, 31)).arrangements == []
    assert crosswalk(session, eu.id, "CA", dt.date(2025, 8, 1)).arrangements == ["EU-CA"]
