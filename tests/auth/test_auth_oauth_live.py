"""A standard OAuth client (Authlib's OAuth2Session) against the live token endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from joserfc.jwk import RSAKey

from hub import create_app
from hub.auth.models import OAuthToken
from hub.db import Database
from tests.auth.hubkit import Credentials, bearer, live_server, load_reference, make_client

LIFETIME = 900  # seconds: a token's lifetime here (the default)


@pytest.fixture
def server(committed_db: Database) -> Iterator[str]:
    load_reference(committed_db)
    app = create_app({"ENV": "testing", "DATABASE_URL": committed_db.url,
                      "TOKEN_LIFETIME_SECONDS": LIFETIME})
    with live_server(app) as base:
        yield base
    app.extensions["aeohub.db"].dispose()


def _session(creds: Credentials, method: str = "client_secret_basic", **kwargs: Any
             ) -> OAuth2Session:
    return OAuth2Session(creds.client_id, creds.secret, token_endpoint_auth_method=method,
                         **kwargs)


def _programmes(base: str, token: str) -> requests.Response:
    return requests.get(base + "/api/v1/programmes", timeout=10,
                        headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_secret_methods_get_a_token_that_calls_the_api(server, committed_db, method):
    creds = make_client(committed_db, "US-CTPAT", "verify,registry:read")
    with _session(creds, method, scope="registry:read") as session:
        token = session.fetch_token(server + "/oauth/token", grant_type="client_credentials")
        assert token["token_type"].lower() == "bearer"
        assert token["scope"] == "registry:read"
        assert token["expires_in"] == LIFETIME
        with session.get(server + "/api/v1/programmes", timeout=10) as response:
            assert response.status_code == 200
            assert any(p["code"] == "EU-AEO" for p in response.json()["programmes"])
        # The token is stored only as a digest.
        with committed_db.session_scope() as db:
            stored = [t.token_hash for t in db.query(OAuthToken)]
        assert token["access_token"] not in stored


def test_private_key_jwt_and_jti_replay(server, committed_db, tmp_path):
    key = RSAKey.generate_key(2048)
    public = {"keys": [{**key.as_dict(private=False), "kid": "k1"}]}
    creds = make_client(committed_db, "EU-AEO", "verify", jwks=public)
    token_url = server + "/oauth/token"
    with OAuth2Session(creds.client_id, key.as_pem(private=True).decode(),
                       token_endpoint_auth_method="private_key_jwt") as session:
        session.register_client_auth_method(PrivateKeyJWT(token_url))
        token = session.fetch_token(token_url, grant_type="client_credentials")
        assert token["scope"] == "verify"
    # The same assertion twice: the second is a replay.
    assertion = private_key_jwt_sign(key, creds.client_id,
                                     token_url, alg="RS256")
    form = {"grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion}
    with requests.post(token_url, data=form, timeout=10) as first:
        assert first.status_code == 200
    with requests.post(token_url, data=form, timeout=10) as second:
        assert second.status_code in (400, 401)
        assert second.json()["error"] == "invalid_client"
        assert second.headers["Content-Type"].startswith("application/problem+json")
    # A key the client did not register is refused.
    other = RSAKey.generate_key(2048)
    forged = private_key_jwt_sign(other, creds.client_id,
                                  token_url, alg="RS256")
    with requests.post(token_url, data={**form, "client_assertion": forged},
                       timeout=10) as refused:
        assert refused.json()["error"] == "invalid_client"


def test_scope_not_held_is_invalid_scope_and_bad_secret_invalid_client(server, committed_db):
    creds = make_client(committed_db, "US-CTPAT", "verify")
    assert creds.secret is not None
    with requests.post(server + "/oauth/token", auth=(creds.client_id, creds.secret),
                       data={"grant_type": "client_credentials", "scope": "verify export"},
                       timeout=10) as response:
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_scope"
    with requests.post(server + "/oauth/token", auth=(creds.client_id, "wrong"),
                       data={"grant_type": "client_credentials"}, timeout=10) as response:
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"


def test_expiry_revocation_and_introspection(server, committed_db, clock):
    creds = make_client(committed_db, "US-CTPAT", "verify,registry:read")
    other = make_client(committed_db, "EU-AEO", "verify")
    with _session(creds) as session:
        token = session.fetch_token(server + "/oauth/token")["access_token"]
        with session.introspect_token(server + "/oauth/introspect", token=token) as answer:
            info = answer.json()
        assert info["active"] is True and info["client_id"] == creds.client_id
        assert info["programme"] == "US-CTPAT"
        with _programmes(server, token) as response:
            assert response.status_code == 200
        # Another client may not introspect it (answered as inactive).
        with _session(other) as stranger, stranger.introspect_token(
                server + "/oauth/introspect", token=token) as answer:
            assert answer.json() == {"active": False}
        with session.revoke_token(server + "/oauth/revoke", token=token) as revoked:
            assert revoked.status_code == 200
        with _programmes(server, token) as response:
            assert response.status_code == 401
            assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        with session.introspect_token(server + "/oauth/introspect", token=token) as answer:
            assert answer.json() == {"active": False}
        # Expiry, on the hub's clock: active until its lifetime is over, then refused.
        short = session.fetch_token(server + "/oauth/token")["access_token"]
        clock.advance(LIFETIME - 30)
        with _programmes(server, short) as response:
            assert response.status_code == 200
        with session.introspect_token(server + "/oauth/introspect", token=short) as answer:
            assert answer.json()["active"] is True
        clock.advance(30)
        with _programmes(server, short) as response:
            assert response.status_code == 401
            assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        with session.introspect_token(server + "/oauth/introspect", token=short) as answer:
            assert answer.json() == {"active": False}


def test_metadata_and_jwks(server):
    with requests.get(server + "/.well-known/oauth-authorization-server", timeout=10) as r:
        meta = r.json()
    assert meta["token_endpoint"] == server + "/oauth/token"
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic", "client_secret_post", "private_key_jwt"}
    assert meta["grant_types_supported"] == ["client_credentials"]
    with requests.get(meta["jwks_uri"], timeout=10) as r:
        assert r.json() == {"keys": []}


def test_disabled_client_loses_tokens_and_rotation(ref_app, committed_db):
    runner = ref_app.test_cli_runner()
    result = runner.invoke(args=["clients", "create", "--name", "risk engine", "--programme",
                                 "US-CTPAT", "--scopes", "verify,registry:read", "--json"])
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    client = ref_app.test_client()
    token = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                        auth=(created["client_id"], created["client_secret"])).json
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert client.get("/api/v1/programmes", headers=headers).status_code == 200
    # No overlap: the old secret is refused at once (the default overlap is tested in
    # test_client_lifecycle).
    rotated = runner.invoke(args=["clients", "rotate-secret", created["client_id"],
                                  "--overlap", "0", "--json"])
    new_secret = json.loads(rotated.output)["client_secret"]
    assert client.post("/oauth/token", data={"grant_type": "client_credentials"},
                       auth=(created["client_id"], created["client_secret"])).status_code == 401
    assert client.post("/oauth/token", data={"grant_type": "client_credentials"},
                       auth=(created["client_id"], new_secret)).status_code == 200
    listed = runner.invoke(args=["clients", "list"])
    assert created["client_id"] in listed.output and new_secret not in listed.output
    disabled = runner.invoke(args=["clients", "disable", created["client_id"]])
    assert "token(s) revoked" in disabled.output
    assert client.get("/api/v1/programmes", headers=headers).status_code == 401
    bad = runner.invoke(args=["clients", "create", "--name", "x", "--programme", "NOPE",
                              "--scopes", "verify"])
    assert bad.exit_code != 0 and "does not exist" in bad.output


def test_scope_missing_is_403_and_rate_limit_429(committed_db):
    load_reference(committed_db)
    app = create_app({"ENV": "testing", "DATABASE_URL": committed_db.url,
                      "RATE_LIMIT_REQUESTS": 5, "RATE_LIMIT_WINDOW_SECONDS": 60})
    client = app.test_client()
    creds = make_client(committed_db, "US-CTPAT", "verify")
    headers = bearer(committed_db, creds)
    response = client.get("/api/v1/programmes", headers=headers)
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    statuses = [client.get("/api/v1/programmes", headers=headers).status_code
                for _ in range(6)]
    assert statuses[-1] == 429
    last = client.get("/api/v1/programmes", headers=headers)
    assert last.status_code == 429 and int(last.headers["Retry-After"]) >= 1
    # Another worker (a second app on the same database) shares the window.
    app2 = create_app({"ENV": "testing", "DATABASE_URL": committed_db.url,
                       "RATE_LIMIT_REQUESTS": 5, "RATE_LIMIT_WINDOW_SECONDS": 60})
    assert app2.test_client().get("/api/v1/programmes", headers=headers).status_code == 429
    for application in (app, app2):
        application.extensions["aeohub.db"].dispose()
