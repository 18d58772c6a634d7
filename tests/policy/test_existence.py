"""No answer reveals that an operator outside the client's view exists.

For every option of verify (date, known_at, flow, programme, and their combinations),
single and batch, by identifier, by name and address, by both, and by a MID the hub
derived (a hint), and for match, the answer about an
operator the client may not see is compared with the answer to the very same request
once that operator no longer exists: they must be identical, messages included, apart
from the request's own identifiers. The clock is frozen so that data ages agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import time_machine
from flask import Flask
from sqlalchemy import delete

from hub.auth import policy
from hub.db import Database
from hub.registry.models import Operator, OperatorEvent, OperatorIdentifier
from tests.auth.hubkit import bearer, live_server, make_client, make_operator, programmes

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
#: (client programme, operator programme, category, consent) the client may not see.
HIDDEN = (
    ("US-CTPAT", "EU-AEO", "AEOS", False),  # no consent, where the EU requires it
    ("US-CTPAT", "EU-AEO", "AEOC", True),   # a category CBP does not recognise
    ("US-CTPAT", "CH-AEO", "AEO", True),    # no arrangement between the US and CH
    ("KH-AEO", "SG-STP", "STP_PLUS", True),  # Cambodia has not implemented the AAMRA
)
OPTIONS: tuple[dict[str, Any], ...] = (
    {},
    {"date": "2026-06-15"},
    {"date": "2019-03-01"},
    {"date": "2030-01-01"},
    {"flow": "export"},
    {"known_at": NOW.isoformat()},
    {"known_at": "2021-01-01T00:00:00+00:00"},
    {"date": "2024-01-10", "flow": "export", "known_at": "2025-05-05T10:00:00+00:00"},
    {"programme": "__own__"},
)
VOLATILE = ("request_id",)


def _clean(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in VOLATILE}


def _mid(row: Operator) -> str:
    return f"{row.country}TRA{row.id}POR"


def _traders(row: Operator) -> list[dict[str, Any]]:
    address = {"street": row.street, "city": row.city, "postcode": row.postcode,
               "country": row.country}
    by_id = {"scheme": row.trader_id_scheme, "value": row.trader_id}
    by_name = {"name": row.legal_name, "address": address}
    # A MID the hub derived for it: a matching hint, which must not leak either.
    by_mid = {"scheme": "MID", "value": _mid(row)}
    return [by_id, by_name, {**by_id, **by_name}, by_mid]


#: Requests per hidden operator: verify (each trader form, then all in one batch) for
#: every option, and match for each trader form.
PER_CASE = len(OPTIONS) * 5 + 4


def _requests(client: str, traders: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for options in OPTIONS:
        chosen = {k: (client if v == "__own__" else v) for k, v in options.items()}
        for trader in traders:
            out.append(("/api/v1/verify", {"trader": trader, **chosen}))
        out.append(("/api/v1/verify/batch", {"traders": traders, **chosen}))
    for trader in traders:
        out.append(("/api/v1/match", {"trader": trader, "limit": 3}))
    assert len(out) == PER_CASE
    return out


@pytest.fixture
def frozen() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def test_hidden_operators_are_answered_as_nonexistent(frozen: None, ref_app: Flask,
                                                       committed_db: Database) -> None:
    cases: list[tuple[str, int, list[dict[str, Any]]]] = []
    with committed_db.session_scope(write=True) as session:
        progs = programmes(session)
        # A visible operator of each programme too, so that names have rivals to score.
        for unique, (client, programme, category, consent) in enumerate(HIDDEN, start=1):
            oid = make_operator(session, progs[programme], 8100 + unique, category=category,
                                consent=consent)
            row = session.get(Operator, oid)
            assert row is not None
            session.add(OperatorIdentifier(operator_id=oid, scheme="MID", value=_mid(row),
                                           origin="derived", linked=False))
            cases.append((client, oid, _traders(row)))
        make_operator(session, progs["EU-AEO"], 8200, category="AEOS", consent=True)
    policy.clear_cache()
    with live_server(ref_app) as base:
        tokens = {c: bearer(committed_db, make_client(committed_db, c, "verify,match"))
                  for c in {case[0] for case in cases}}

        def ask() -> list[tuple[int, dict[str, Any]]]:
            answers = []
            for client, _oid, traders in cases:
                for path, body in _requests(client, traders):
                    response = requests.post(base + path, json=body, headers=tokens[client])
                    answer = _clean(response.json())
                    if path.endswith("/match"):
                        # Scores weigh words by their frequency in the whole registry:
                        # the candidates (all visible) and their order must agree.
                        answer["candidates"] = [(c["operator_id"], c["via"])
                                                for c in answer["candidates"]]
                    answers.append((response.status_code, answer))
            return answers

        hidden = ask()
        hidden_ids = {oid for _c, oid, _t in cases}
        for status, body in hidden:
            assert status == 200, body
            if "candidates" in body:  # match
                assert not {c[0] for c in body["candidates"]} & hidden_ids
                continue
            decisions = body.get("decisions") or [body["decision"]]
            for decision in decisions:
                assert decision["operator"] is None and decision["decision"] != "recognised"
        with committed_db.session_scope(write=True) as session:
            ids = [oid for _c, oid, _t in cases]
            session.execute(delete(OperatorIdentifier)
                            .where(OperatorIdentifier.operator_id.in_(ids)))
            session.execute(delete(OperatorEvent).where(OperatorEvent.operator_id.in_(ids)))
            session.execute(delete(Operator).where(Operator.id.in_(ids)))
        absent = ask()
    assert len(hidden) == len(absent) == len(cases) * PER_CASE
    for (client, _oid, traders), start in zip(cases, range(0, len(hidden), PER_CASE),
                                              strict=True):
        for offset, (path, body) in enumerate(_requests(client, traders)):
            got, want = hidden[start + offset], absent[start + offset]
            assert got == want, (client, path, body)
