"""Rate limits that say so: RateLimit-Policy and RateLimit on every answer, a batch costing
its item count, and a request costing more than the whole quota refused with the largest
batch allowed."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from hub.api.schemas import MAX_BATCH
from hub.auth import guard
from hub.auth.ratelimit import RateLimiter
from tests.auth.hubkit import bearer, make_client

FIELD = re.compile(r'^"default";r=(\d+);t=(\d+)$')
#: A window no test run straddles (windows are aligned to multiples of their length).
WINDOW = 10**9


@pytest.fixture
def ref_app(ref_app: Flask) -> Flask:
    ref_app.extensions[guard.LIMITER_KEY] = RateLimiter(
        ref_app.extensions["aeohub.db"], int(ref_app.config["RATE_LIMIT_REQUESTS"]), WINDOW)
    return ref_app


def _left(response: TestResponse) -> int:
    match = FIELD.match(response.headers["RateLimit"])
    assert match, response.headers.get("RateLimit")
    return int(match.group(1))


def _batch(n: int) -> dict[str, object]:
    return {"traders": [{"scheme": "EORI", "value": f"DE{i:015d}"} for i in range(n)]}


def test_answers_carry_the_quota_and_a_batch_costs_its_items(ref_app, backend):
    database = ref_app.extensions["aeohub.db"]
    headers = bearer(database, make_client(database, "US-CTPAT", "verify registry:read",
                                           rate_limit=100))
    client = ref_app.test_client()
    first = client.get("/api/v1/programmes", headers=headers)
    assert first.status_code == 200
    assert first.headers["RateLimit-Policy"] == f'"default";q=100;w={WINDOW}'
    assert _left(first) == 99
    batch = client.post("/api/v1/verify/batch", headers=headers, json=_batch(10))
    assert batch.status_code == 200, batch.get_json()
    assert _left(batch) == 89
    refused = client.post("/api/v1/verify/batch", headers=headers, json=_batch(95))
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert _left(refused) == 88  # the request's own unit, not its 95 items
    single = client.post("/api/v1/verify", headers=headers,
                         json={"trader": {"scheme": "EORI", "value": "DE000000000000001"}})
    assert single.status_code == 200 and _left(single) == 87
    failed = client.get("/api/v1/operators?limit=0", headers=headers)
    assert failed.status_code == 400 and _left(failed) == 86  # errors say so too


def test_a_request_beyond_the_whole_quota_names_the_largest_batch(ref_app, backend):
    database = ref_app.extensions["aeohub.db"]
    headers = bearer(database, make_client(database, "US-CTPAT", "verify", rate_limit=100))
    other = bearer(database, make_client(database, "US-CTPAT", "verify", rate_limit=100))
    client = ref_app.test_client()
    too_big = client.post("/api/v1/verify/batch", headers=headers, json=_batch(101))
    assert too_big.status_code == 400
    assert too_big.json["max_items"] == 100
    assert too_big.json["errors"] == [{"field": "traders",
                                       "detail": "at most 100 items for this client"}]
    largest = client.post("/api/v1/verify/batch", headers=other, json=_batch(100))
    assert largest.status_code == 200, largest.get_json()
    assert _left(largest) == 0


def test_item_cost_is_configurable(ref_app, backend):
    ref_app.config["RATE_LIMIT_BATCH_ITEM_COST"] = 4
    database = ref_app.extensions["aeohub.db"]
    headers = bearer(database, make_client(database, "US-CTPAT", "verify", rate_limit=100))
    client = ref_app.test_client()
    answer = client.post("/api/v1/verify/batch", headers=headers, json=_batch(5))
    assert answer.status_code == 200 and _left(answer) == 80
    too_big = client.post("/api/v1/verify/batch", headers=headers, json=_batch(26))
    assert too_big.status_code == 400 and too_big.json["max_items"] == 25


def test_the_default_quota_takes_a_full_batch(ref_app, backend):
    database = ref_app.extensions["aeohub.db"]
    headers = bearer(database, make_client(database, "US-CTPAT", "verify"))
    response = ref_app.test_client().post("/api/v1/verify/batch", headers=headers,
                                          json=_batch(MAX_BATCH))
    assert response.status_code == 200, response.get_json()
    assert len(response.json["decisions"]) == MAX_BATCH
    assert _left(response) == ref_app.config["RATE_LIMIT_REQUESTS"] - MAX_BATCH


def test_workers_sharing_a_quota_never_grant_more_than_it(ref_app, committed_db, backend):
    pk = make_client(committed_db, "US-CTPAT", "verify").pk
    workers = [RateLimiter(committed_db, 100, 60) for _ in range(3)]
    now = 1_800_000_000.0
    spent = 0
    for round_ in range(60):
        for number, worker in enumerate(workers):
            cost = 1 + (round_ * 7 + number * 3) % 9
            if worker.hit(pk, now=now, cost=cost).allowed:
                spent += cost
    assert 100 - max(1, 100 // 20) * len(workers) - 9 <= spent <= 100
    assert not workers[0].hit(pk, now=now, cost=101).allowed
    assert workers[0].hit(pk, now=now + 60, cost=100).allowed  # the next window
