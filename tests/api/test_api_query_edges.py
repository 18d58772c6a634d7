"""Every API request's query is checked, whether or not its operation takes parameters:
a NUL character, a member given twice or a member the operation does not document is a
400 naming it, for an admitted request; a caller without a valid token gets 401."""

from __future__ import annotations

import pytest

from tests.auth.hubkit import bearer, make_client

VERIFY_BODY = {"trader": {"scheme": "EORI", "value": "DE123456789012345"}}


@pytest.fixture
def partner(ref_app, committed_db) -> dict[str, str]:
    return bearer(committed_db, make_client(
        committed_db, "US-CTPAT", "verify,registry:read,export,changes:read"))


def _errors(answer) -> list[dict[str, str]]:
    assert answer.status_code == 400, answer.get_data(as_text=True)[:300]
    assert answer.mimetype == "application/problem+json"
    body = answer.get_json()
    assert {"type", "title", "status", "detail", "request_id"} <= body.keys()
    return list(body["errors"])


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/api/v1/arrangements"), ("get", "/api/v1/programmes"),
    ("get", "/api/v1/export/EU-AEO.ndjson"), ("post", "/api/v1/verify"),
    ("get", "/api/v1/openapi.json"), ("get", "/api/v1/audit/head"),
])
def test_operations_without_parameters_refuse_any_query_member(ref_app, partner, method,
                                                               path):
    http = ref_app.test_client()
    body = VERIFY_BODY if method == "post" else None
    for query, detail in (("x=%00", "must not contain NUL characters"),
                          ("x=1&x=2", "given more than once"),
                          ("x=1", "Unknown field.")):
        answer = getattr(http, method)(f"{path}?{query}", headers=partner, json=body)
        assert _errors(answer) == [{"field": "x", "detail": detail}], (path, query)
    assert getattr(http, method)(path, headers=partner, json=body).status_code == 200


def test_operations_with_parameters_keep_their_own_checks(ref_app, partner):
    http = ref_app.test_client()
    assert http.get("/api/v1/operators?limit=5&programme=EU-AEO",
                    headers=partner).status_code == 200
    assert _errors(http.get("/api/v1/operators?limit=5&limit=7", headers=partner)) == [
        {"field": "limit", "detail": "given more than once"}]
    assert _errors(http.get("/api/v1/changes?x=1", headers=partner)) == [
        {"field": "x", "detail": "Unknown field."}]
    assert _errors(http.get("/api/v1/operators?programme=EU%00AEO", headers=partner)) == [
        {"field": "programme", "detail": "must not contain NUL characters"}]


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/api/v1/arrangements?x=%00"), ("post", "/api/v1/verify?x=1&x=2"),
    ("get", "/api/v1/operators?limit=5&limit=7"),
])
def test_a_caller_without_a_valid_token_learns_nothing_about_its_query(ref_app, method,
                                                                       path):
    answer = getattr(ref_app.test_client(), method)(path, json=VERIFY_BODY)
    assert answer.status_code == 401


def test_a_caller_without_the_scope_gets_403_whatever_its_query(ref_app, committed_db):
    headers = bearer(committed_db, make_client(committed_db, "US-CTPAT", "verify"))
    answer = ref_app.test_client().get("/api/v1/arrangements?x=%00", headers=headers)
    assert answer.status_code == 403
