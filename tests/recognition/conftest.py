"""Fixtures for recognition tests: reference data loaded, and a helper to add operators."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.arrangements.service import load_reference_data
from hub.registry.models import Operator, Programme
from hub.registry.service import OperatorData, apply_operator

D = dt.date


def at(day: str, hour: int = 12) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=dt.UTC)


def cats(*codes: str, status: str = "valid", since: str = "2010-01-04",
         tier: str | None = None) -> list[dict[str, Any]]:
    """Category entries; `tier` is each entry's tier (C-TPAT's tier1, tier2, tier3)."""
    return [{"code": c, "status": status, "since": since, **({"tier": tier} if tier else {})}
            for c in codes]


OperatorFactory = Callable[..., Operator]


@pytest.fixture
def reference(session: Session) -> dict[str, Programme]:
    load_reference_data(session)
    session.flush()
    return {p.code: p for p in session.scalars(select(Programme))}


@pytest.fixture
def add_operator(session: Session, reference: dict[str, Programme]) -> OperatorFactory:
    """`add_operator(programme, key, now=..., identifiers=[...], **values)`."""

    def make(programme: str, key: str, *, now: dt.datetime | None = None,
             identifiers: list[tuple[str, str, str, bool]] | None = None,
             **overrides: Any) -> Operator:
        prog = reference[programme]
        values: dict[str, Any] = {
            "authorisation_number": key,
            "trader_id_scheme": prog.primary_scheme,
            "trader_id": key,
            "legal_name": "Test Trading Company",
            "street": "1 Main Street",
            "city": "Springfield",
            "postcode": None,
            "region": None,
            "country": "DE",
            "status": "valid",
            "status_effective": D(2010, 1, 4),
            "categories": cats("AEOC", "AEOS"),
            "issuing_authority": None,
            "authorised_on": D(2010, 1, 4),
            "valid_from": D(2010, 1, 4),
            "valid_until": None,
            "consent_share": True,
            "consent_publish": True,
            "source_changed_at": None,
            "fingerprint": None,
            "warnings": [],
        }
        values.update(overrides)
        idents = [(prog.primary_scheme, key, "declared", True), *(identifiers or [])]
        data = OperatorData(stable_key=key, values=values, identifiers=idents)
        return apply_operator(session, prog, data, now=now or at("2024-01-10")).operator

    return make
