"""verify: every reason code and every docs/domain.md rule on dates, direction and scope."""

from __future__ import annotations

import datetime as dt
from collections.abc import ValuesView

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import versions
from hub.arrangements.models import ArrangementDirection
from hub.arrangements.service import change_status
from hub.errors import InvalidInput, NotFound
from hub.recognition import reasons as rc
from hub.recognition.rules import DirectionRule, cached_reference
from hub.recognition.service import Decision, verify, verify_many, verify_many_dicts
from hub.recognition.trader import DeclaredTrader
from hub.registry.models import Operator
from hub.registry.service import OperatorData, apply_operator, remove_operator
from tests.recognition.conftest import D, OperatorFactory, at, cats

EORI = "DE123456789012345"
NOW = at("2025-06-01")


def eori(value: str = EORI) -> DeclaredTrader:
    return DeclaredTrader(scheme="EORI", value=value)


def ctpat(value: str) -> DeclaredTrader:
    return DeclaredTrader(scheme="US_CTPAT", value=value)


def codes(decision: Decision) -> list[str]:
    return decision.reason_codes


@pytest.fixture
def eu_aeof(add_operator: OperatorFactory) -> Operator:
    return add_operator("EU-AEO", EORI, categories=cats("AEOC", "AEOS"),
                        identifiers=[("MID", "DEMUSLOG12HAM", "declared", True),
                                     ("MID", "DEMUSLOG99HAM", "derived", False)])


def test_eu_us_both_directions_across_2012_2013(session, eu_aeof, add_operator):
    # CBP recognised EU AEOS/AEOF from July 2012.
    before = verify(session, eori(), "US-CTPAT", D(2012, 6, 30), now=NOW)
    assert before.decision == "not_recognised"
    assert rc.NOT_YET_ACTIVE in codes(before)
    assert rc.ARRANGEMENT_NOT_IN_FORCE in codes(before)
    after = verify(session, eori(), "US-CTPAT", D(2012, 7, 2), now=NOW)
    assert after.decision == "recognised", after.reasons
    assert [a.arrangement for a in after.arrangements] == ["EU-US"]
    assert after.arrangements[0].categories == ("AEOF",)
    assert after.arrangements[0].benefits
    assert after.operator is not None and after.operator["id"] == eu_aeof.id
    # The EU recognised C-TPAT (validated importers) only from 31 January 2013.
    add_operator("US-CTPAT", "12345678", country="US",
                 categories=cats("importer", tier="tier2"))
    autumn = verify(session, ctpat("12345678"), "EU-AEO", D(2012, 10, 1), now=NOW)
    assert autumn.decision == "not_recognised"
    assert codes(autumn) == [rc.NOT_YET_ACTIVE]  # the arrangement itself is in force
    assert verify(session, ctpat("12345678"), "EU-AEO", D(2013, 1, 30),
                  now=NOW).decision == "not_recognised"
    feb = verify(session, ctpat("12345678"), "EU-AEO", D(2013, 1, 31), now=NOW)
    assert feb.decision == "recognised", feb.reasons
    assert feb.arrangements[0].categories == ("importer",)


def test_tier_and_category_out_of_scope(session, add_operator):
    add_operator("US-CTPAT", "11111111", country="US",
                 categories=cats("importer", tier="tier1"))
    add_operator("US-CTPAT", "22222222", country="US",
                 categories=cats("customs_broker", tier="tier2"))
    tier1 = verify(session, ctpat("11111111"), "EU-AEO", D(2024, 1, 1), now=NOW)
    assert codes(tier1) == [rc.TIER_NOT_RECOGNISED]
    assert "tier1" in tier1.reasons[0].message and "tier2" in tier1.reasons[0].message
    broker = verify(session, ctpat("22222222"), "EU-AEO", D(2024, 1, 1), now=NOW)
    assert codes(broker) == [rc.CATEGORY_OUT_OF_SCOPE]
    add_operator("EU-AEO", "FR53740792600014", country="FR", categories=cats("AEOC"))
    aeoc = verify(session, eori("FR53740792600014"), "US-CTPAT", D(2024, 1, 1), now=NOW)
    assert codes(aeoc) == [rc.CATEGORY_OUT_OF_SCOPE]


def test_component_suspension(session, reference, add_operator):
    op = add_operator("EU-AEO", EORI, categories=cats("AEOC", "AEOS"))
    apply_operator(session, reference["EU-AEO"], OperatorData(EORI, {
        "categories": [{"code": "AEOC", "status": "valid", "since": "2010-01-04"},
                       {"code": "AEOS", "status": "suspended", "since": "2024-05-01"}]},
        [("EORI", EORI, "declared", True)]), now=at("2024-05-02"))
    assert op.status == "valid"
    us = verify(session, eori(), "US-CTPAT", D(2024, 6, 1), now=NOW)
    assert us.decision == "not_recognised"
    assert codes(us) == [rc.STATUS_SUSPENDED]
    assert "AEOS" in us.reasons[0].message
    # Before the suspension, from history:
    assert verify(session, eori(), "US-CTPAT", D(2024, 4, 30), now=NOW).decision == "recognised"
    # A direction recognising AEOC still holds (EU-CN's per-arrangement switch).
    direction = session.scalar(select(ArrangementDirection).where(
        ArrangementDirection.recognising_id == reference["CN-AEO"].id,
        ArrangementDirection.recognised_id == reference["EU-AEO"].id))
    direction.categories = ["AEOC", "AEOS", "AEOF"]
    versions.bump(session, versions.REFERENCE)
    cn = verify(session, eori(), "CN-AEO", D(2024, 6, 1), now=NOW)
    assert cn.decision == "recognised", cn.reasons
    assert cn.arrangements[0].categories == ("AEOC",)


def test_a_combined_category_entry_counts_for_its_components(session, add_operator):
    add_operator("EU-AEO", EORI, categories=cats("AEOF"))
    decision = verify(session, eori(), "US-CTPAT", D(2024, 6, 1), now=NOW)
    assert decision.decision == "recognised"
    assert decision.arrangements[0].categories == ("AEOF",)


def test_statuses_from_history(session, reference, add_operator):
    add_operator("EU-AEO", EORI)
    for status, code in [("suspended", rc.STATUS_SUSPENDED), ("revoked", rc.STATUS_REVOKED),
                         ("withdrawn", rc.STATUS_WITHDRAWN), ("expired", rc.STATUS_EXPIRED)]:
        key = f"DE{abs(hash(status)) % 10**12:012d}"
        add_operator("EU-AEO", key, now=at("2024-01-10"))
        apply_operator(session, reference["EU-AEO"], OperatorData(key, {
            "status": status, "status_effective": D(2024, 5, 1)},
            [("EORI", key, "declared", True)]), now=at("2024-05-02"))
        later = verify(session, eori(key), "US-CTPAT", D(2024, 6, 1), now=NOW)
        assert later.decision == "not_recognised"
        assert codes(later)[0] == code
        earlier = verify(session, eori(key), "US-CTPAT", D(2024, 4, 30), now=NOW)
        assert earlier.decision == "recognised", (status, earlier.reasons)


def test_annulment_is_retroactive_but_known_at_shows_what_was_said(session, reference,
                                                                  add_operator):
    add_operator("EU-AEO", EORI)
    apply_operator(session, reference["EU-AEO"], OperatorData(EORI, {
        "status": "annulled", "status_effective": D(2024, 5, 1)},
        [("EORI", EORI, "declared", True)]), now=at("2024-05-02"))
    for day in (D(2015, 1, 1), D(2024, 4, 1), D(2024, 6, 1)):
        decision = verify(session, eori(), "US-CTPAT", day, now=NOW)
        assert decision.decision == "not_recognised"
        assert codes(decision) == [rc.STATUS_ANNULLED]
    told = verify(session, eori(), "US-CTPAT", D(2024, 4, 1), known_at=at("2024-04-15"),
                  now=NOW)
    assert told.decision == "recognised"
    unknown = verify(session, eori(), "US-CTPAT", D(2024, 4, 1), known_at=at("2023-01-01"),
                     now=NOW)
    assert unknown.decision == "unknown_trader"
    assert codes(unknown) == [rc.NOT_KNOWN_AT]


def test_known_at_a_suspension_recorded_later(session, reference, add_operator):
    add_operator("EU-AEO", EORI)
    apply_operator(session, reference["EU-AEO"], OperatorData(EORI, {
        "status": "suspended", "status_effective": D(2024, 3, 1)},
        [("EORI", EORI, "declared", True)]), now=at("2024-03-20"))
    assert verify(session, eori(), "US-CTPAT", D(2024, 3, 10),
                  known_at=at("2024-03-15"), now=NOW).decision == "recognised"
    late = verify(session, eori(), "US-CTPAT", D(2024, 3, 10), now=NOW)
    assert codes(late) == [rc.STATUS_SUSPENDED]


def test_not_yet_valid_and_validity_window(session, add_operator):
    add_operator("EU-AEO", EORI, authorised_on=D(2020, 3, 1), valid_from=D(2020, 3, 1),
                 status_effective=D(2020, 3, 1))
    early = verify(session, eori(), "US-CTPAT", D(2020, 2, 1), now=NOW)
    assert codes(early) == [rc.NOT_YET_VALID]
    add_operator("CN-AEO", "1234567890", country="CN", categories=cats("ACE"),
                 valid_from=D(2021, 1, 1), valid_until=D(2023, 12, 31))
    ref = DeclaredTrader(scheme="CN_CUSTOMS", value="1234567890")
    assert verify(session, ref, "EU-AEO", D(2023, 12, 31), now=NOW).decision == "recognised"
    expired = verify(session, ref, "EU-AEO", D(2024, 1, 1), now=NOW)
    assert codes(expired) == [rc.STATUS_EXPIRED]


def test_consent(session, add_operator):
    add_operator("EU-AEO", EORI, consent_share=False)
    decision = verify(session, eori(), "US-CTPAT", D(2024, 6, 1), now=NOW)
    assert codes(decision) == [rc.NO_CONSENT]
    # Programmes without a consent requirement do not ask for it.
    add_operator("CN-AEO", "1234567890", country="CN", categories=cats("ACE"),
                 consent_share=False)
    ref = DeclaredTrader(scheme="CN_CUSTOMS", value="1234567890")
    assert verify(session, ref, "EU-AEO", D(2024, 6, 1), now=NOW).decision == "recognised"


def test_flow_arrangement_status_and_no_arrangement(session, eu_aeof):
    export = verify(session, eori(), "US-CTPAT", D(2024, 6, 1), "export", now=NOW)
    assert codes(export) == [rc.FLOW_NOT_COVERED]
    assert verify(session, eori(), "EU-AEO", D(2024, 6, 1), now=NOW).reason_codes == [
        rc.NO_ARRANGEMENT]
    assert verify(session, eori(), "IN-AEO", D(2024, 6, 1), now=NOW).reason_codes == [
        rc.NO_ARRANGEMENT]
    assert verify(session, eori(), "US-CTPAT", D(2024, 6, 1), now=NOW).decision == "recognised"
    change_status(session, "EU-US", "suspend", D(2024, 5, 15))
    suspended = verify(session, eori(), "US-CTPAT", D(2024, 6, 1), now=NOW)
    assert codes(suspended) == [rc.ARRANGEMENT_NOT_IN_FORCE]
    assert verify(session, eori(), "US-CTPAT", D(2024, 5, 14), now=NOW).decision == "recognised"


def test_staggered_asean_activation(session, add_operator):
    add_operator("TH-AEO", "0105536000313", country="TH", categories=cats("AEO"))
    th = DeclaredTrader(scheme="TH_TIN", value="0105536000313")
    first = verify(session, th, "SG-STP", D(2024, 8, 10), now=NOW)
    assert codes(first) == [rc.NOT_YET_ACTIVE]
    assert verify(session, th, "SG-STP", D(2024, 8, 19), now=NOW).decision == "recognised"
    add_operator("PH-AEO", "123456789000", country="PH", categories=cats("LEVEL_1"))
    add_operator("PH-AEO", "999456789000", country="PH", categories=cats("LEVEL_2"))
    level1 = DeclaredTrader(scheme="PH_TIN", value="123456789000")
    level2 = DeclaredTrader(scheme="PH_TIN", value="999456789000")
    assert codes(verify(session, level2, "MY-AEO", D(2025, 2, 27), now=NOW)) == [
        rc.NOT_YET_ACTIVE]
    assert verify(session, level2, "MY-AEO", D(2025, 2, 28), now=NOW).decision == "recognised"
    assert codes(verify(session, level1, "MY-AEO", D(2025, 3, 1), now=NOW)) == [
        rc.CATEGORY_OUT_OF_SCOPE]
    add_operator("VN-AEO", "0100109106", country="VN", categories=cats("AEO"))
    vn = DeclaredTrader(scheme="VN_MST", value="0100109106")
    assert codes(verify(session, vn, "SG-STP", D(2025, 6, 1), now=NOW)) == [rc.NOT_YET_ACTIVE]


def test_identity_reasons(session, eu_aeof):
    unknown = verify(session, eori("DE999999999999999"), "US-CTPAT", now=NOW)
    assert unknown.decision == "unknown_trader"
    assert codes(unknown) == [rc.UNKNOWN_IDENTIFIER]
    invalid = verify(session, DeclaredTrader(scheme="EORI", value="1"), "US-CTPAT", now=NOW)
    assert invalid.decision == "unknown_trader"
    assert codes(invalid) == [rc.INVALID_IDENTIFIER]
    linked = verify(session, DeclaredTrader(scheme="MID", value="DEMUSLOG12HAM"), "US-CTPAT",
                    D(2024, 6, 1), now=NOW)
    assert linked.decision == "recognised"
    derived = verify(session, DeclaredTrader(scheme="MID", value="DEMUSLOG99HAM"), "US-CTPAT",
                     D(2024, 6, 1), now=NOW)
    assert derived.decision == "unknown_trader"
    assert codes(derived) == [rc.MID_NOT_LINKED]
    assert [c.operator_id for c in derived.candidates] == [eu_aeof.id]


def test_removed_from_registry(session, eu_aeof):
    remove_operator(session, eu_aeof, now=at("2024-05-02"))
    assert codes(verify(session, eori(), "US-CTPAT", D(2024, 6, 1), now=NOW)) == [
        rc.REMOVED_FROM_REGISTRY]
    assert verify(session, eori(), "US-CTPAT", D(2024, 5, 1), now=NOW).decision == "recognised"


def test_data_version_and_staleness(session, reference, eu_aeof):
    fresh = verify(session, eori(), "US-CTPAT", D(2024, 6, 1), now=NOW)
    assert fresh.data_version is None and fresh.stale
    reference["EU-AEO"].data_version = NOW - dt.timedelta(hours=2)
    answer = verify(session, eori(), "US-CTPAT", D(2024, 6, 1), now=NOW)
    assert answer.data_age_seconds == 7200 and not answer.stale
    assert verify(session, eori(), "US-CTPAT", D(2024, 6, 1), now=NOW,
                  staleness_seconds=3600).stale
    payload = answer.to_dict()
    assert set(payload) >= {"decision", "operator", "candidates", "arrangements", "reasons",
                            "data_version", "data_age_seconds", "stale"}
    assert payload["arrangements"][0]["code"] == "EU-US"
    # An unknown trader is answered from the oldest sync among the programmes the
    # recogniser recognises (those never synced hold no data and do not count).
    unknown = verify(session, eori("DE999999999999999"), "US-CTPAT", D(2024, 6, 1), now=NOW)
    assert unknown.decision == "unknown_trader" and unknown.data_age_seconds == 7200
    recognised = {rule.recognised for rules in _directions(session) for rule in rules
                  if rule.recognising == "US-CTPAT"}
    also = sorted(recognised - {"EU-AEO"})[0]
    unrelated = sorted(set(reference) - recognised - {"US-CTPAT"})[0]
    reference[also].data_version = NOW - dt.timedelta(hours=5)
    reference[unrelated].data_version = NOW - dt.timedelta(hours=9)  # not recognised
    unknown = verify(session, eori("DE999999999999999"), "US-CTPAT", D(2024, 6, 1), now=NOW)
    assert unknown.data_age_seconds == 5 * 3600


def test_verify_many_matches_verify(session, eu_aeof, add_operator):
    add_operator("US-CTPAT", "12345678", country="US", categories=cats("importer", tier="tier2"))
    refs = [eori(), ctpat("12345678"), eori("DE999999999999999"),
            DeclaredTrader(scheme="EORI", value="1")]
    many = verify_many(session, refs, "US-CTPAT", D(2024, 6, 1), now=NOW)
    single = [verify(session, r, "US-CTPAT", D(2024, 6, 1), now=NOW) for r in refs]
    assert [d.to_dict() for d in many] == [d.to_dict() for d in single]
    assert [d.decision for d in many] == ["recognised", "not_recognised", "unknown_trader",
                                          "unknown_trader"]
    # The dict form (a batch's), its arrangements and reasons made once per object.
    repeated = refs * 3
    assert verify_many_dicts(session, repeated, "US-CTPAT", D(2024, 6, 1), now=NOW) == [
        d.to_dict() for d in verify_many(session, repeated, "US-CTPAT", D(2024, 6, 1),
                                         now=NOW)]


def test_bad_requests(session, reference):
    with pytest.raises(NotFound):
        verify(session, eori(), "XX-NOPE", now=NOW)
    with pytest.raises(InvalidInput) as exc:
        verify(session, DeclaredTrader(), "US-CTPAT", now=NOW)
    assert "reference" in exc.value.fields
    with pytest.raises(InvalidInput):
        verify(session, eori(), "US-CTPAT", flow="transit", now=NOW)


def test_every_reason_code_is_covered() -> None:
    covered = {rc.STATUS_SUSPENDED, rc.STATUS_REVOKED, rc.STATUS_ANNULLED, rc.STATUS_EXPIRED,
               rc.STATUS_WITHDRAWN, rc.NOT_YET_VALID, rc.REMOVED_FROM_REGISTRY, rc.NO_CONSENT,
               rc.CATEGORY_OUT_OF_SCOPE, rc.TIER_NOT_RECOGNISED, rc.NO_ARRANGEMENT,
               rc.ARRANGEMENT_NOT_IN_FORCE,
               rc.NOT_YET_ACTIVE, rc.FLOW_NOT_COVERED, rc.INVALID_IDENTIFIER,
               rc.UNKNOWN_IDENTIFIER, rc.MID_NOT_LINKED, rc.NOT_KNOWN_AT,
               # in test_recognition_matching.py:
               rc.NO_MATCH, rc.AMBIGUOUS_MATCH, rc.REFERENCES_DISAGREE}
    assert covered == set(rc.ALL_CODES)


def _directions(session: Session) -> ValuesView[tuple[DirectionRule, ...]]:
    return cached_reference(session).directions.values()
