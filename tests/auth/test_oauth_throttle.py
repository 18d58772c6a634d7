"""Failed client authentications are throttled per address and per (client, address).

Beyond the limits, the OAuth endpoints answer 429 with Retry-After before checking any
secret; failures from one address never block the client from another; refusals are
counted in the metrics; each limit reached writes one audit entry for its window.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from prometheus_client import REGISTRY
from sqlalchemy import select

from hub import create_app
from hub.audit.models import AuditEntry
from hub.db import Database
from tests.auth.hubkit import live_server, load_reference, make_client

GRANT = {"grant_type": "client_credentials"}
ATTACKER = {"X-Forwarded-For": "203.0.113.7"}
PARTNER = {"X-Forwarded-For": "198.51.100.20"}


@pytest.fixture
def base(committed_db: Database) -> Iterator[str]:
    load_reference(committed_db)
    app = create_app({"ENV": "testing", "DATABASE_URL": committed_db.url,
                      "TRUSTED_PROXIES": 1, "OAUTH_FAILURES_PER_CLIENT_ADDRESS": 3,
                      "OAUTH_FAILURES_PER_ADDRESS": 5, "OAUTH_FAILURE_WINDOW_SECONDS": 3600})
    with live_server(app) as url:
        yield url
    app.extensions["aeohub.db"].dispose()


def _token(base: str, auth: Any, headers: dict[str, str]) -> requests.Response:
    with requests.post(base + "/oauth/token", data=GRANT, auth=auth, headers=headers,
                       timeout=10) as response:
        return response


def _throttled(limit: str) -> float:
    return REGISTRY.get_sample_value("aeohub_oauth_throttled_total", {"limit": limit}) or 0.0


def _throttle_entries(database: Database) -> list[dict[str, Any]]:
    with database.session_scope() as session:
        return [dict(entry.details or {}) for entry in session.scalars(
            select(AuditEntry).where(AuditEntry.action == "oauth.throttled")
            .order_by(AuditEntry.seq))]


def test_failures_throttle_the_pair_then_the_address_never_the_client_elsewhere(
        base, committed_db):
    partner = make_client(committed_db, "EU-AEO", "verify")
    other = make_client(committed_db, "EU-AEO", "verify")
    before = _throttled("client_address"), _throttled("address")
    for _ in range(3):
        assert _token(base, (partner.client_id, "wrong"), ATTACKER).status_code == 401
    # The pair is throttled: even the right secret waits, from that address.
    refused = _token(base, (partner.client_id, partner.secret), ATTACKER)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"] == "temporarily_unavailable"
    # The partner from its own address is not blocked; another client from the attacker's
    # address is not either (the address has 3 failures of 5).
    assert _token(base, (partner.client_id, partner.secret), PARTNER).status_code == 200
    assert _token(base, (other.client_id, other.secret), ATTACKER).status_code == 200
    # Two more failures (unknown clients) reach the address's limit: everything from it
    # waits, the partner elsewhere still gets tokens.
    for name in ("aeo_nobody1", "aeo_nobody2"):
        assert _token(base, (name, "x"), ATTACKER).status_code == 401
    for _ in range(3):
        assert _token(base, (other.client_id, other.secret), ATTACKER).status_code == 429
    assert _token(base, (partner.client_id, partner.secret), PARTNER).status_code == 200
    assert _throttled("client_address") == before[0] + 1
    assert _throttled("address") == before[1] + 3
    # One audit entry per limit reached in the window, not one per attempt.
    entries = _throttle_entries(committed_db)
    assert [e["limit"] for e in entries] == ["client_address", "address"]
    assert entries[0]["client_id"] == partner.client_id


def test_forwarded_addresses_are_ignored_without_a_trusted_proxy(committed_db):
    load_reference(committed_db)
    app = create_app({"ENV": "testing", "DATABASE_URL": committed_db.url,
                      "OAUTH_FAILURES_PER_CLIENT_ADDRESS": 2})
    partner = make_client(committed_db, "EU-AEO", "verify")
    try:
        with live_server(app) as url:
            for address in ("203.0.113.1", "203.0.113.2"):
                answer = _token(url, (partner.client_id, "wrong"),
                                {"X-Forwarded-For": address})
                assert answer.status_code == 401
            # Both came from the same real address, whatever they claimed.
            answer = _token(url, (partner.client_id, partner.secret),
                            {"X-Forwarded-For": "203.0.113.3"})
            assert answer.status_code == 429
    finally:
        app.extensions["aeohub.db"].dispose()
