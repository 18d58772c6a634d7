"""As-of and known-at queries across several changes, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy.orm import Session

from hub.registry.history import OperatorFacts
from hub.registry.models import Administration, Operator, Programme
from hub.registry.service import (
    OperatorData,
    apply_operator,
    facts_on,
    find_by_identifier,
    operator_history,
    remove_operator,
)

D = dt.date


def at(day: str, hour: int = 12) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=dt.UTC)


@pytest.fixture
def eu(session):
    admin = Administration(code="EU", name="European Union", countries=["DE", "FR"])
    programme = Programme(code="EU-AEO", name="EU AEO", administration=admin,
                          categories=[{"code": "AEOC"}, {"code": "AEOS"}, {"code": "AEOF"}],
                          primary_scheme="EORI", stable_key_scheme="EORI",
                          consent_required=True)
    session.add(programme)
    session.flush()
    return programme


def state_of(session: Session, op: Operator, day: dt.date,
             known_at: dt.datetime | None = None) -> OperatorFacts:
    """`facts_on` for an operator the hub knew at `known_at`."""
    state = facts_on(session, op, day, known_at=known_at)
    assert state is not None
    return state


def record(**overrides: Any) -> OperatorData:
    values: dict[str, Any] = {
        "authorisation_number": "DEAEOF0002508",
        "trader_id_scheme": "EORI",
        "trader_id": "DE123456789012345",
        "legal_name": "Muster Logistik GmbH",
        "street": "Hafenstrasse 12",
        "city": "Hamburg",
        "postcode": "20457",
        "region": None,
        "country": "DE",
        "status": "valid",
        "status_effective": D(2019, 3, 1),
        "categories": [{"code": "AEOC", "status": "valid", "since": "2019-03-01"},
                       {"code": "AEOS", "status": "valid", "since": "2019-03-01"}],
        "issuing_authority": "DE Hauptzollamt Hamburg",
        "authorised_on": D(2019, 3, 1),
        "valid_from": D(2019, 3, 1),
        "valid_until": None,
        "consent_share": True,
        "consent_publish": True,
        "source_changed_at": None,
        "fingerprint": None,
        "warnings": [],
    }
    values.update(overrides)
    return OperatorData(stable_key=values["trader_id"], values=values,
                        identifiers=[("EORI", values["trader_id"], "declared", True)])


def test_component_suspension_and_reinstatement_as_of(session, eu):
    created = apply_operator(session, eu, record(), now=at("2024-01-10"))
    assert created.outcome == "created"
    op = created.operator
    suspended_cats = [{"code": "AEOC", "status": "valid", "since": "2019-03-01"},
                      {"code": "AEOS", "status": "suspended", "since": "2024-05-01"}]
    result = apply_operator(session, eu, record(categories=suspended_cats),
                            now=at("2024-05-02"))
    assert [e.kind for e in result.events] == ["categories_changed"]
    assert result.events[0].effective_date == D(2024, 5, 1)
    apply_operator(session, eu, record(), now=at("2024-06-01"))

    before = state_of(session, op, D(2024, 4, 30))
    during = state_of(session, op, D(2024, 5, 1))  # effective on D applies to all of D
    after = state_of(session, op, D(2024, 6, 1))
    assert before.component_status("AEOS") == "valid"
    assert during.component_status("AEOS") == "suspended"
    assert during.component_status("AEOC") == "valid"  # still holds customs simplification
    assert during.status == "valid"
    assert after.component_status("AEOS") == "valid"
    # as the hub knew it on 1 May 2024 (before the suspension reached it)
    known = state_of(session, op, D(2024, 5, 1), known_at=at("2024-05-01", 23))
    assert known.component_status("AEOS") == "valid"
    # before the hub knew the operator at all
    assert facts_on(session, op, D(2024, 5, 1), known_at=at("2024-01-09")) is None
    # before the authorisation began
    assert state_of(session, op, D(2019, 2, 28)).exists is False
    assert state_of(session, op, D(2019, 3, 1)).exists is True


def test_annulment_is_retroactive_but_known_at_keeps_what_was_said(session, eu):
    op = apply_operator(session, eu, record(), now=at("2024-01-10")).operator
    apply_operator(session, eu, record(status="annulled", status_effective=D(2024, 7, 1)),
                   now=at("2024-07-02"))
    for day in (D(2019, 3, 1), D(2023, 6, 1), D(2024, 8, 1)):
        state = state_of(session, op, day)
        assert state.exists is False and state.annulled is True and state.status == "annulled"
    earlier = state_of(session, op, D(2023, 6, 1), known_at=at("2024-07-01"))
    assert earlier.exists is True and earlier.status == "valid"


def test_late_correction_overrides_only_the_dates_it_covers(session, eu):
    op = apply_operator(session, eu, record(), now=at("2024-01-10")).operator
    apply_operator(session, eu, record(status="suspended", status_effective=D(2024, 3, 1)),
                   now=at("2024-03-01"))
    apply_operator(session, eu, record(status="valid", status_effective=D(2024, 3, 10)),
                   now=at("2024-03-10"))
    # A revocation effective 5 March arrives on 20 March.
    apply_operator(session, eu, record(status="revoked", status_effective=D(2024, 3, 5)),
                   now=at("2024-03-20"))
    assert state_of(session, op, D(2024, 3, 3)).status == "suspended"
    assert state_of(session, op, D(2024, 3, 7)).status == "revoked"
    assert state_of(session, op, D(2024, 3, 15)).status == "revoked"
    assert state_of(session, op, D(2024, 3, 15), known_at=at("2024-03-12")).status == "valid"


def test_record_first_seen_suspended_was_valid_before(session, eu):
    op = apply_operator(session, eu, record(status="suspended",
                                            status_effective=D(2023, 9, 1)),
                        now=at("2024-01-10")).operator
    kinds = [e.kind for e in operator_history(session, op.id)]
    assert kinds == ["created", "status_changed"]
    assert state_of(session, op, D(2023, 8, 31)).status == "valid"
    assert state_of(session, op, D(2023, 9, 1)).status == "suspended"
    assert state_of(session, op, D(2024, 2, 1)).status == "suspended"


def test_details_consent_removal_and_restoration(session, eu):
    op = apply_operator(session, eu, record(), now=at("2024-01-10")).operator
    res = apply_operator(session, eu, record(legal_name="Muster Logistik SE",
                                             consent_share=False), now=at("2024-02-01"))
    assert sorted(e.kind for e in res.events) == ["consent_changed", "details_changed"]
    assert state_of(session, op, D(2024, 1, 31)).details["legal_name"] == "Muster Logistik GmbH"
    assert state_of(session, op, D(2024, 2, 1)).details["legal_name"] == "Muster Logistik SE"
    assert state_of(session, op, D(2024, 1, 31)).consent_share is True
    assert state_of(session, op, D(2024, 2, 1)).consent_share is False
    assert apply_operator(session, eu, record(legal_name="Muster Logistik SE",
                                              consent_share=False),
                          now=at("2024-02-02")).outcome == "unchanged"
    remove_operator(session, op, now=at("2024-03-01"))
    assert state_of(session, op, D(2024, 3, 1)).listed is False
    assert state_of(session, op, D(2024, 2, 28)).listed is True
    again = apply_operator(session, eu, record(legal_name="Muster Logistik SE",
                                               consent_share=False), now=at("2024-04-01"))
    assert again.outcome == "restored"
    assert state_of(session, op, D(2024, 4, 1)).listed is True
    kinds = [e.kind for e in operator_history(session, op.id)]
    assert kinds == ["created", "consent_changed", "details_changed", "removed", "restored"]


def test_current_date_fast_path_agrees_with_history(session, eu):
    op = apply_operator(session, eu, record(), now=at("2024-01-10")).operator
    apply_operator(session, eu, record(status="suspended", status_effective=D(2024, 5, 1)),
                   now=at("2024-05-01"))
    fast = state_of(session, op, D(2025, 1, 1))
    slow = state_of(session, op, D(2025, 1, 1), known_at=at("2030-01-01"))
    assert (fast.status, fast.categories, fast.consent_share) == (
        slow.status, slow.categories, slow.consent_share)


def test_find_by_identifier_ignores_derived_identifiers(session, eu):
    data = record()
    data.identifiers.append(("MID", "DEMUSLOG12HAM", "derived", False))
    data.identifiers.append(("MID", "DEMUSLOG99HAM", "declared", True))
    op = apply_operator(session, eu, data, now=at("2024-01-10")).operator
    assert find_by_identifier(session, "EORI", "DE123456789012345") == [op]
    assert find_by_identifier(session, "MID", "DEMUSLOG99HAM") == [op]
    assert find_by_identifier(session, "MID", "DEMUSLOG12HAM") == []
    assert find_by_identifier(session, "MID", "DEMUSLOG12HAM", declared_only=False) == [op]
