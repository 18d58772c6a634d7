"""Every error body names the request (`request_id`), OAuth's included, so that a partner
can quote it to the hub's operator."""

from __future__ import annotations

import pytest

from tests.auth.hubkit import bearer, make_client


@pytest.mark.parametrize("method, path, kwargs", [
    ("post", "/oauth/token", {"data": {"grant_type": "client_credentials"},
                              "auth": ("nobody", "wrong")}),
    ("post", "/oauth/token", {"data": {"grant_type": "password"}}),
    ("post", "/oauth/introspect", {"data": {"token": "x"}}),
    ("post", "/oauth/revoke", {"data": {"token": "x"}, "auth": ("nobody", "wrong")}),
    ("get", "/api/v1/operators", {}),
    ("get", "/api/v1/operators/1", {"headers": {"Authorization": "Bearer not-a-token"}}),
    ("get", "/api/v1/nowhere", {}),
    ("get", "/.well-known/nowhere", {}),
])
def test_every_error_body_carries_the_request_id(ref_app, method, path, kwargs):
    response = getattr(ref_app.test_client(), method)(path, **kwargs)
    assert response.status_code >= 400
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["request_id"] and body["request_id"] == response.headers.get("X-Request-ID")


def test_a_scope_error_and_a_bad_query_carry_it_too(ref_app, committed_db):
    headers = bearer(committed_db, make_client(committed_db, "US-CTPAT", "verify"))
    client = ref_app.test_client()
    for response in (client.get("/api/v1/operators", headers=headers),
                     client.post("/api/v1/verify", headers=headers, json={"x": 1})):
        assert response.status_code in (400, 403)
        assert response.get_json()["request_id"]
