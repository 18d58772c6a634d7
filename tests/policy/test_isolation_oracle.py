"""The hand-written isolation oracle (`tests.policy.oracle`), checked on every partner
path over real HTTP on both backends, and the same rows as a verify truth table.

Paths: the operator list, export, change feed, operator page, history and recognition,
verify (single and batch), match and webhooks. The clock is moved to each row's day
(time-machine): a client's view is judged at request time, so "on day D" means a request
made on day D.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import time_machine
from flask import Flask
from sqlalchemy import select

from hub.arrangements import service as arrangements
from hub.auth import policy
from hub.db import Database
from hub.notify import events
from hub.notify.models import WebhookDelivery, WebhookSubscription
from hub.registry.models import Operator
from tests.auth.hubkit import bearer, live_server, make_client, make_operator, programmes
from tests.notify.conftest import change
from tests.notify.receiver import running_receiver
from tests.policy.oracle import MANUAL_STEPS, ROWS, Row

SCOPES = "verify,match,registry:read,changes:read,export"
Key = tuple[str, str, bool, str]
#: The live hub's base URL and, per key, its operator's id and identifier.
World = tuple[str, dict[Key, dict[str, Any]]]


def _key(row: Row) -> Key:
    return (row.programme, row.category, row.consent, row.status)


@pytest.fixture
def world(ref_app: Flask, committed_db: Database) -> Iterator[World]:
    """The live hub with the manual steps taken and one operator per distinct
    (programme, category, consent, status) of the rows; yields the base URL and each
    operator's id and identifier."""
    operators: dict[Key, dict[str, Any]] = {}
    with committed_db.session_scope(write=True) as session:
        for code, action, day in MANUAL_STEPS:
            arrangements.change_status(session, code, action, day, actor="test")
        progs = programmes(session)
        for unique, key in enumerate(sorted({_key(r) for r in ROWS}), start=1):
            programme, category, consent, status = key
            oid = make_operator(session, progs[programme], 7000 + unique, category=category,
                                consent=consent, status=status)
            row = session.get(Operator, oid)
            assert row is not None
            operators[key] = {"id": oid, "trader": {"scheme": row.trader_id_scheme,
                                                    "value": row.trader_id}}
    policy.clear_cache()
    with live_server(ref_app) as base:
        yield base, operators


def _on(day: dt.date) -> time_machine.travel:
    return time_machine.travel(dt.datetime.combine(day, dt.time(12), dt.UTC), tick=False)


def _by_client_and_day() -> dict[tuple[str, dt.date], list[Row]]:
    grouped: dict[tuple[str, dt.date], list[Row]] = defaultdict(list)
    for row in ROWS:
        grouped[(row.client, row.day)].append(row)
    return grouped


def test_the_oracle_is_large_and_covers_each_case() -> None:
    assert len(ROWS) >= 40
    assert len({r.day for r in ROWS}) >= 5
    assert any(r.visible for r in ROWS) and any(not r.visible for r in ROWS)
    assert any(not r.consent and not r.visible for r in ROWS)


def test_every_partner_path_shows_exactly_the_oracle(world: World, committed_db: Database
                                                     ) -> None:
    base, operators = world
    clients = {code: make_client(committed_db, code, SCOPES)
               for code in sorted({r.client for r in ROWS})}
    for (client, day), rows in sorted(_by_client_and_day().items()):
        with _on(day):
            headers = bearer(committed_db, clients[client])
            http = requests.Session()
            http.headers.update(headers)
            label = f"{client} on {day}"

            # List (every page).
            listed: set[int] = set()
            url: str | None = f"{base}/api/v1/operators?limit=500"
            while url:
                page = http.get(url)
                assert page.status_code == 200, (label, page.text)
                listed |= {item["id"] for item in page.json()["items"]}
                cursor = page.json()["next_cursor"]
                url = f"{base}/api/v1/operators?limit=500&cursor={cursor}" if cursor else None
            # Export, per programme of the rows.
            exported: set[int] = set()
            for programme in sorted({r.programme for r in rows}):
                with http.get(f"{base}/api/v1/export/{programme}.ndjson",
                              stream=True) as response:
                    if response.status_code == 200:
                        exported |= {json.loads(line)["id"]
                                     for line in response.text.splitlines() if line}
                    else:
                        assert response.status_code == 404, (label, programme)
            # Change feed: the creations it carries.
            feed = http.get(f"{base}/api/v1/changes?limit=5000")
            assert feed.status_code == 200, (label, feed.text)
            created = {c["operator_id"] for c in feed.json()["changes"]
                       if c["kind"] == "created"}
            # Verify in one batch.
            batch = http.post(f"{base}/api/v1/verify/batch", json={
                "traders": [operators[_key(r)]["trader"] for r in rows]})
            assert batch.status_code == 200, (label, batch.text)

            for row, answer in zip(rows, batch.json()["decisions"], strict=True):
                oid = operators[_key(row)]["id"]
                want = row.visible
                where = (label, row)
                assert (oid in listed) == want, ("list", *where)
                assert (oid in exported) == want, ("export", *where)
                assert (oid in created) == want, ("changes", *where)
                for path in ("", "/history", "/recognition"):
                    got = http.get(f"{base}/api/v1/operators/{oid}{path}").status_code
                    assert got == (200 if want else 404), (f"operators{path}", *where)
                single = http.post(f"{base}/api/v1/verify",
                                   json={"trader": operators[_key(row)]["trader"]})
                assert single.status_code == 200, where
                for name, got_answer in (("batch", answer),
                                         ("single", single.json()["decision"])):
                    found = (got_answer["operator"] or {}).get("id")
                    assert (found == oid) == want, (f"verify {name}", *where)
                    assert (got_answer["decision"] != "unknown_trader") == want, (
                        f"verify {name}", *where)
                match = http.post(f"{base}/api/v1/match",
                                  json={"trader": operators[_key(row)]["trader"]})
                assert match.status_code == 200, where
                matched = {c.get("operator_id") for c in match.json()["candidates"]}
                assert (oid in matched) == want, ("match", *where)


def test_verify_truth_table(world: World, committed_db: Database) -> None:
    """The oracle's rows as verify answers: decision and reason codes, single and batch,
    on the row's day for its flow."""
    base, operators = world
    clients = {code: make_client(committed_db, code, "verify")
               for code in sorted({r.client for r in ROWS})}
    for (client, day), rows in sorted(_by_client_and_day().items()):
        with _on(day):
            headers = bearer(committed_db, clients[client])
            for flow in sorted({r.flow for r in rows}):
                chosen = [r for r in rows if r.flow == flow]
                batch = requests.post(f"{base}/api/v1/verify/batch", headers=headers, json={
                    "traders": [operators[_key(r)]["trader"] for r in chosen],
                    "flow": flow, "date": day.isoformat()})
                assert batch.status_code == 200, batch.text
                for row, answer in zip(chosen, batch.json()["decisions"], strict=True):
                    single = requests.post(f"{base}/api/v1/verify", headers=headers, json={
                        "trader": operators[_key(row)]["trader"], "flow": flow}
                    ).json()["decision"]
                    for got in (answer, single):
                        codes = tuple(r["code"] for r in got["reasons"])
                        assert (got["decision"], codes) == (row.decision, row.reasons), (
                            client, day, row, got["reasons"])


def test_webhooks_carry_exactly_the_oracle(world: World, committed_db: Database) -> None:
    """Webhooks: on each day, a subscription per client, then every row's operator is
    suspended and reinstated; the dispatcher queues `operator.suspended` exactly for the
    operators the oracle says the client sees that day."""
    base, operators = world
    clients = {code: make_client(committed_db, code, "webhooks")
               for code in sorted({r.client for r in ROWS})}
    by_day: dict[dt.date, list[Row]] = defaultdict(list)
    for row in ROWS:
        by_day[row.day].append(row)
    with running_receiver() as receiver:
        for day, rows in sorted(by_day.items()):
            with _on(day):
                subscriptions: dict[str, str] = {}
                for client in sorted({r.client for r in rows}):
                    created = requests.post(
                        f"{base}/api/v1/webhooks", headers=bearer(committed_db,
                                                                  clients[client]),
                        json={"url": receiver.url, "events": ["operator.suspended"]})
                    assert created.status_code == 201, created.text
                    subscriptions[client] = created.json()["id"]
                touched = sorted({operators[_key(r)]["id"] for r in rows
                                  if r.status == "valid"})
                for oid in touched:
                    change(committed_db, oid, status="suspended")
                    change(committed_db, oid, status="valid")
                events.dispatch(committed_db)
                with committed_db.session_scope() as session:
                    queued: dict[str, set[int]] = defaultdict(set)
                    for public_id, payload in session.execute(
                            select(WebhookSubscription.public_id, WebhookDelivery.payload)
                            .join(WebhookDelivery, WebhookDelivery.subscription_id
                                  == WebhookSubscription.id)):
                        queued[public_id].add(int(payload["data"]["operator_id"]))
                for row in rows:
                    oid = operators[_key(row)]["id"]
                    if oid in touched:
                        got = oid in queued[subscriptions[row.client]]
                        assert got == row.visible, ("webhooks", row.client, day, row)
