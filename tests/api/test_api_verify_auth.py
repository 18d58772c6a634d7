"""`POST /api/v1/verify` authenticates in its view (the token's statement also reads the
trader's operators: one round trip), and answers exactly as a route authenticated first.

Whatever the body, a request without an active token gets 401, one without the scope
403, one over its rate limit 429; only an admitted request learns what is wrong with its
body, and only an admitted request is answered.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select
from sqlalchemy.pool import QueuePool

from hub import db
from hub.auth import service as auth_service
from hub.auth.guard import LIMITER_KEY, require_scope
from hub.recognition import service as recognition
from hub.registry.models import Operator
from tests.auth.hubkit import bearer, make_client, make_operator, programmes

VERIFY = "/api/v1/verify"
BAD_BODIES = [
    {"trader": {"scheme": "EORI"}},  # no value
    {"trader": {"scheme": "EORI", "value": "DE1"}, "flow": "sideways"},
    {"nothing": "useful"},
    "not an object",
]


@pytest.fixture
def trader(ref_app, committed_db) -> dict[str, str]:
    """A trader of EU-AEO, recognised by US-CTPAT."""
    with committed_db.session_scope(write=True) as session:
        eu = programmes(session)["EU-AEO"]
        operator_id = make_operator(session, eu, 1, category="AEOF")
        session.flush()
        row = session.execute(select(Operator.trader_id_scheme, Operator.trader_id)
                              .where(Operator.id == operator_id)).one()
    return {"scheme": row[0], "value": row[1]}


def _post(app, body, headers=None):
    return app.test_client().post(VERIFY, json=body, headers=headers or {})


def _revoked(committed_db, credentials) -> dict[str, str]:
    headers = bearer(committed_db, credentials)
    with committed_db.session_scope(write=True) as session:
        auth_service.revoke_client_tokens(
            session, auth_service.get_client(session, credentials.client_id))
    return headers


def test_an_admitted_request_is_answered(ref_app, committed_db, trader):
    headers = bearer(committed_db, make_client(committed_db, "US-CTPAT", "verify"))
    answer = _post(ref_app, {"trader": trader}, headers)
    assert answer.status_code == 200, answer.json
    assert answer.json["decision"]["operator"]["trader_id"] == trader["value"]
    # Lower case and spaces: the identifier the recognition service reads is the same.
    spaced = {"scheme": trader["scheme"].lower(), "value": " ".join(trader["value"].lower())}
    again = _post(ref_app, {"trader": spaced}, headers)
    assert again.json["decision"]["operator"]["id"] == answer.json["decision"]["operator"]["id"]
    unknown = _post(ref_app, {"trader": {"scheme": "EORI", "value": "DE999999999999999"}},
                    headers)
    assert unknown.status_code == 200 and unknown.json["decision"]["operator"] is None
    by_name = _post(ref_app, {"trader": {"name": "Nobody In Particular GmbH", "address": {
        "street": "Nowhere 1", "city": "Berlin", "postcode": "10115", "country": "DE"}}},
        headers)
    assert by_name.status_code == 200, by_name.json


@pytest.mark.parametrize("body", [None, *BAD_BODIES])
def test_without_a_token_the_answer_is_401_whatever_the_body(ref_app, trader, body):
    answer = _post(ref_app, {"trader": trader} if body is None else body)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="aeohub"'
    assert answer.mimetype == "application/problem+json"


@pytest.mark.parametrize("body", [None, *BAD_BODIES])
def test_a_revoked_or_unknown_token_gets_401_whatever_the_body(ref_app, committed_db,
                                                                trader, body):
    revoked = _revoked(committed_db, make_client(committed_db, "US-CTPAT", "verify"))
    for headers in (revoked, {"Authorization": "Bearer no-such-token"}):
        answer = _post(ref_app, {"trader": trader} if body is None else body, headers)
        assert answer.status_code == 401, answer.json
        assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
        assert "decision" not in answer.json


@pytest.mark.parametrize("body", [None, *BAD_BODIES])
def test_a_token_without_the_scope_gets_403_whatever_the_body(ref_app, committed_db,
                                                               trader, body):
    headers = bearer(committed_db, make_client(committed_db, "US-CTPAT", "match"))
    answer = _post(ref_app, {"trader": trader} if body is None else body, headers)
    assert answer.status_code == 403
    assert answer.json["required_scope"] == "verify"


def test_an_admitted_request_learns_what_is_wrong_with_its_body(ref_app, committed_db):
    headers = bearer(committed_db, make_client(committed_db, "US-CTPAT", "verify"))
    answer = _post(ref_app, BAD_BODIES[1], headers)
    assert answer.status_code == 400
    assert {e["field"] for e in answer.json["errors"]} == {"flow"}


def test_an_oversized_body_without_a_token_gets_401(ref_app, trader):
    answer = ref_app.test_client().post(VERIFY, data=b"{" + b" " * (1 << 20) + b"}",
                                        content_type="application/json")
    assert answer.status_code == 401


@pytest.mark.parametrize("body", [None, BAD_BODIES[0]])
def test_over_the_rate_limit_the_answer_is_429_whatever_the_body(ref_app, committed_db,
                                                                 trader, body):
    # One window for the whole test: both requests must not straddle a window's end.
    ref_app.extensions[LIMITER_KEY].window_seconds = 10**12
    headers = bearer(committed_db, make_client(committed_db, "US-CTPAT", "verify",
                                               rate_limit=1))
    assert _post(ref_app, {"trader": trader}, headers).status_code == 200
    answer = _post(ref_app, {"trader": trader} if body is None else body, headers)
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) >= 1


def test_a_view_that_authenticates_itself_but_does_not_is_never_answered(ref_app,
                                                                         committed_db):
    @require_scope("verify", in_view=True)
    def forgetful() -> str:
        return "registry data"

    ref_app.add_url_rule("/forgetful", view_func=forgetful, methods=["POST"])
    ref_app.config["PROPAGATE_EXCEPTIONS"] = False
    headers = bearer(committed_db, make_client(committed_db, "US-CTPAT", "verify"))
    answer = ref_app.test_client().post("/forgetful", headers=headers)
    assert answer.status_code == 500
    assert b"registry data" not in answer.data


def test_a_kept_reader_serves_request_after_request_on_one_connection(ref_app, committed_db,
                                                                       trader, monkeypatch):
    """`keep_reader` (gunicorn sync workers): one reader and one pooled connection from
    one request to the next; an idle one, or one a query failed on, goes back to the
    pool; the answers stay those of a new reader."""
    database = db.get_db(ref_app)
    headers = bearer(committed_db, make_client(committed_db, "US-CTPAT", "verify"))
    expected = _post(ref_app, {"trader": trader}, headers).json["decision"]
    database.keep_reader = True
    pool = database.engine.pool
    assert isinstance(pool, QueuePool)  # what both backends' engines pool with

    def answer() -> dict:
        response = _post(ref_app, {"trader": trader}, headers)
        assert response.status_code == 200, response.json
        return response.json["decision"]

    assert answer() == expected
    kept = database.request_reader()
    pooled = kept.info[db.DRIVER_KEY]
    assert pool.checkedout() == 1  # held between requests
    assert answer() == expected and answer() == expected
    assert database.request_reader() is kept and kept.info[db.DRIVER_KEY] is pooled
    assert not kept.in_transaction() and not list(kept)

    # Idle for longer than the ping interval: back to the pool, a checked-out one used.
    kept.info[db.KEPT_KEY] -= db.PING_IDLE_SECONDS + 1
    assert answer() == expected
    assert kept.info[db.DRIVER_KEY] is not pooled and pool.checkedout() == 1

    # A query that fails gives its connection back at once.
    def broken(_pooled):
        raise RuntimeError("the connection broke")

    monkeypatch.setattr(db, "_cursor", broken)
    ref_app.config["PROPAGATE_EXCEPTIONS"] = False
    assert _post(ref_app, {"trader": trader}, headers).status_code == 500
    assert db.DRIVER_KEY not in kept.info and pool.checkedout() == 0
    monkeypatch.undo()
    assert answer() == expected

    # Another thread gets a reader of its own, not kept.
    other: list = []
    thread = threading.Thread(target=lambda: other.append(database.request_reader()))
    thread.start()
    thread.join()
    assert other[0] is not kept and db.KEPT_KEY not in other[0].info
    other[0].close()

    database.dispose()  # what is kept goes back too
    assert pool.checkedout() == 0


def test_rows_read_ahead_never_reach_the_next_request_on_a_kept_reader(ref_app, committed_db,
                                                                        trader):
    """A verify that fails after its token statement read the trader's operators (here:
    an unknown programme named by an admin) leaves nothing behind for the next request
    on a kept reader: that one reads the operators afresh, after a consent withdrawal
    made in between."""
    database = db.get_db(ref_app)
    database.keep_reader = True
    admin = bearer(committed_db, make_client(committed_db, None, "admin"))
    refused = _post(ref_app, {"trader": trader, "programme": "NO-SUCH"}, admin)
    assert refused.status_code in (400, 404), refused.json
    kept = database.request_reader()
    # nothing of the failed request is left in the reader (the rows read ahead were a
    # parameter of that request's verify, never stored)
    assert set(kept.info) <= {db.READER_KEY, db.DRIVER_KEY, db.KEPT_KEY}
    with committed_db.session_scope(write=True) as session:
        operator = session.scalars(select(Operator).where(
            Operator.trader_id == trader["value"])).one()
        operator.consent_share = False
    partner = bearer(committed_db, make_client(committed_db, "US-CTPAT", "verify"))
    answer = _post(ref_app, {"trader": trader}, partner)
    assert answer.status_code == 200
    assert answer.json["decision"]["operator"] is None  # withdrawn consent: not shared
    database.dispose()


def test_the_operators_read_with_the_token_are_not_read_again(ref_app, committed_db, trader,
                                                              monkeypatch):
    """The recognition service answers from the rows the token's statement read ahead
    (`read_ahead`): it reads the trader's identifier no second time."""
    reads: list[dict] = []
    by_identifier = recognition._BY_IDENTIFIER.rows

    def counted(session, params=None):
        reads.append(params)
        return by_identifier(session, params)

    monkeypatch.setattr(recognition._BY_IDENTIFIER, "rows", counted)
    headers = bearer(committed_db, make_client(committed_db, "US-CTPAT", "verify"))
    answer = _post(ref_app, {"trader": trader}, headers)
    assert answer.status_code == 200, answer.json
    assert answer.json["decision"]["operator"]["trader_id"] == trader["value"]
    assert reads == []
    # the batch route reads ahead nothing: there the service reads them itself
    batch = ref_app.test_client().post("/api/v1/verify/batch", headers=headers,
                                       json={"traders": [trader]})
    assert batch.status_code == 200, batch.json
    assert len(reads) == 1 and reads[0]["values"] == [trader["value"]]
