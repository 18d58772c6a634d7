"""Edge cases of the OAuth endpoints: malformed requests are `invalid_request`, never a 500
nor silently accepted; every error carries a safe `error_description`.

- A refused scope with characters outside RFC 6749's error alphabet is `invalid_scope`,
  and the description does not echo them.
- A client assertion expiring absurdly far ahead is `invalid_client` (not an overflow).
- NUL characters, URL query parameters and repeated parameters are `invalid_request`
  naming the parameters (RFC 6749 3.2); a secret followed by NULs never authenticates.
- `unsupported_token_type` on revocation is a 400; introspection ignores an unknown hint.
- A `client_id` beside HTTP Basic or an assertion must name the authenticated client.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import pytest
from authlib.oauth2.rfc7523 import private_key_jwt_sign
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from hub.auth import oauth2, service
from hub.auth.models import OAuthToken
from hub.db import Database
from tests.auth.hubkit import Credentials, make_client

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FORM = "application/x-www-form-urlencoded"
GRANT = "grant_type=client_credentials"


def _db(app: Flask) -> Database:
    database: Database = app.extensions["aeohub.db"]
    return database


def _tokens(app: Flask) -> int:
    with _db(app).session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(OAuthToken)) or 0)


def _raw(client: FlaskClient, body: str, path: str = "/oauth/token", **kwargs: Any
         ) -> TestResponse:
    """A POST with the form body exactly as written (percent-encoding and all)."""
    return client.post(path, data=body, content_type=FORM, **kwargs)


def _error(response: TestResponse, status: int, error: str) -> str:
    """The description of an OAuth error answer, after checking its status and code."""
    body = response.get_json()
    assert response.status_code == status, body
    assert body["error"] == error, body
    assert body["error_description"] == body["detail"]
    assert body["error_description"]
    return str(body["error_description"])


def _key_client(app: Flask) -> tuple[Credentials, RSAKey, str]:
    key = RSAKey.generate_key(2048)
    creds = make_client(_db(app), "EU-AEO", "verify",
                        jwks={"keys": [{**key.as_dict(private=False), "kid": "k1"}]})
    with app.app_context():
        audience = oauth2.token_endpoint()
    return creds, key, audience


def _assertion_form(assertion: str, **extra: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion, **extra}


@pytest.fixture
def creds(ref_app: Flask) -> Credentials:
    return make_client(_db(ref_app), "US-CTPAT", "verify,registry:read")


@pytest.mark.parametrize("scope", ["v%C3%A9rify", "verify%22", "verify%5C", "%C3%A9%22 export"])
def test_a_refused_scope_with_unsafe_characters_is_invalid_scope(ref_app, creds, scope):
    client = ref_app.test_client()
    answer = _raw(client, f"{GRANT}&scope={scope}", auth=(creds.client_id, creds.secret))
    description = _error(answer, 400, "invalid_scope")
    assert description.startswith("the request asks for scopes the client may not ask for: ")
    assert oauth2.printable(description)
    assert "invalid scope name" in description
    if "export" in scope:
        assert description.endswith(": export, 1 invalid scope name")
    assert _tokens(ref_app) == 0


def test_a_refused_printable_scope_is_named(ref_app, creds):
    answer = ref_app.test_client().post("/oauth/token", auth=(creds.client_id, creds.secret),
                                        data={"grant_type": "client_credentials",
                                              "scope": "verify export"})
    assert _error(answer, 400, "invalid_scope") == (
        "the request asks for scopes the client may not ask for: export")
    assert _tokens(ref_app) == 0


@pytest.mark.parametrize("ahead", [10**20, 2 * 3600, 1e300])
def test_an_assertion_expiring_too_far_ahead_is_invalid_client(ref_app, ahead):
    creds, key, audience = _key_client(ref_app)
    exp = ahead if ahead >= 10**10 else int(time.time()) + ahead
    claims = {"iss": creds.client_id, "sub": creds.client_id, "aud": audience, "exp": exp,
              "jti": uuid.uuid4().hex}
    assertion = jwt.encode({"alg": "RS256"}, claims, key)
    answer = ref_app.test_client().post("/oauth/token", data=_assertion_form(assertion))
    assert _error(answer, 401, "invalid_client") == "client authentication failed"
    assert _tokens(ref_app) == 0
    # Within the limit, the same client is served.
    claims.update(exp=int(time.time()) + oauth2.MAX_ASSERTION_SECONDS - 60,
                  jti=uuid.uuid4().hex)
    accepted = ref_app.test_client().post(
        "/oauth/token", data=_assertion_form(jwt.encode({"alg": "RS256"}, claims, key)))
    assert accepted.status_code == 200, accepted.get_json()
    assert _tokens(ref_app) == 1


def test_a_nul_in_a_parameter_is_invalid_request(ref_app, creds):
    client = ref_app.test_client()
    post = _raw(client, f"{GRANT}&client_id={creds.client_id}"
                        f"&client_secret={creds.secret}%00%00")
    assert _error(post, 400, "invalid_request") == (
        "parameters must not contain NUL characters: client_secret")
    basic = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                        auth=(creds.client_id, f"{creds.secret}\x00"))
    assert _error(basic, 400, "invalid_request") == (
        "parameters must not contain NUL characters: client_secret (Authorization header)")
    scope = _raw(client, f"{GRANT}&scope=verify%00", auth=(creds.client_id, creds.secret))
    assert "scope" in _error(scope, 400, "invalid_request")
    name = _raw(client, f"{GRANT}&x%00y=1", auth=(creds.client_id, creds.secret))
    assert _error(name, 400, "invalid_request") == (
        "parameters must not contain NUL characters: (unprintable name)")
    revoke = _raw(client, "token=abc%00", path="/oauth/revoke",
                  auth=(creds.client_id, creds.secret))
    assert _error(revoke, 400, "invalid_request").endswith(": token")
    assert _tokens(ref_app) == 0


def test_a_secret_is_checked_exactly():
    secret = "s3cret-value"
    stored = service.hash_secret(secret)
    assert service.check_secret(stored, secret)
    # HMAC pads a short key with zero bytes: without the check these would match.
    assert not service.check_secret(stored, secret + "\x00")
    assert not service.check_secret(stored, secret + "\x00" * 20)


def test_secrets_are_hashed_at_the_production_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite hashes client secrets cheaply (tests/conftest.py); the hub itself uses
    scrypt at N=2**14, r=8, p=1 with a salt of its own for every secret."""
    monkeypatch.undo()
    first, second = service.hash_secret("s3cret-value"), service.hash_secret("s3cret-value")
    for stored in (first, second):
        scheme, n, r, p, salt, digest = stored.split("$")
        assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
        assert len(salt) == 32 and len(digest) == 128
        assert service.check_secret(stored, "s3cret-value")
    assert first != second
    assert service.UNMATCHABLE_HASH.startswith("scrypt$16384$8$1$")


def test_basic_credentials_that_are_not_utf8_are_invalid_request(ref_app):
    header = "Basic " + base64.b64encode(b"\xff:\xfe").decode()
    answer = ref_app.test_client().post("/oauth/token", headers={"Authorization": header},
                                        data={"grant_type": "client_credentials"})
    assert _error(answer, 400, "invalid_request") == (
        "the Authorization header's credentials are not UTF-8 text")


def test_query_parameters_are_refused(ref_app, creds):
    client = ref_app.test_client()
    auth = (creds.client_id, creds.secret)
    answer = client.post("/oauth/token?scope=verify", auth=auth,
                         data={"grant_type": "client_credentials", "scope": "registry:read"})
    assert _error(answer, 400, "invalid_request") == (
        "parameters must be sent in the form body, not in the URL query: scope")
    only_query = client.post("/oauth/token?grant_type=client_credentials", auth=auth)
    assert _error(only_query, 400, "invalid_request").endswith(": grant_type")
    assert _tokens(ref_app) == 0
    for path in ("/oauth/revoke", "/oauth/introspect"):
        answer = client.post(path + "?token=abc", auth=auth, data={"token": "abc"})
        assert _error(answer, 400, "invalid_request").endswith("URL query: token"), path


def test_repeated_parameters_are_refused(ref_app, creds):
    client = ref_app.test_client()
    twice = _raw(client, f"{GRANT}&{GRANT}", auth=(creds.client_id, creds.secret))
    assert _error(twice, 400, "invalid_request") == (
        "parameters must not be given more than once: grant_type")
    secrets = _raw(client, f"{GRANT}&client_id={creds.client_id}"
                           f"&client_secret={creds.secret}&client_secret=wrong")
    assert _error(secrets, 400, "invalid_request").endswith(": client_secret")
    assert _tokens(ref_app) == 0
    hint = _raw(client, "token=a&token=b", path="/oauth/introspect",
                auth=(creds.client_id, creds.secret))
    assert _error(hint, 400, "invalid_request").endswith(": token")


def test_token_type_hints_and_error_descriptions(ref_app, creds):
    client = ref_app.test_client()
    auth = (creds.client_id, creds.secret)
    token = client.post("/oauth/token", auth=auth,
                        data={"grant_type": "client_credentials"}).get_json()["access_token"]
    revoke = client.post("/oauth/revoke", auth=auth,
                         data={"token": token, "token_type_hint": "bogus"})
    assert _error(revoke, 400, "unsupported_token_type") == (
        "token_type_hint must be access_token or refresh_token")
    # RFC 7662 2.1: an unknown hint is ignored; the token was not revoked above.
    introspect = client.post("/oauth/introspect", auth=auth,
                             data={"token": token, "token_type_hint": "bogus"})
    assert introspect.status_code == 200
    assert introspect.get_json()["active"] is True
    grant = client.post("/oauth/token", auth=auth, data={"grant_type": "p\u00e4ssword"})
    assert _error(grant, 400, "unsupported_grant_type") == (
        "grant_type must be client_credentials")
    no_token = client.post("/oauth/revoke", auth=auth, data={})
    assert _error(no_token, 400, "invalid_request") == "the request has no token parameter"
    other = make_client(_db(ref_app), "EU-AEO", "verify")
    foreign = client.post("/oauth/revoke", auth=(other.client_id, other.secret),
                          data={"token": token})
    assert _error(foreign, 400, "invalid_grant") == "the token was not issued to this client"


def test_client_id_must_name_the_authenticated_client(ref_app, creds):
    client = ref_app.test_client()
    other = make_client(_db(ref_app), "EU-AEO", "verify")
    basic = client.post("/oauth/token", auth=(creds.client_id, creds.secret),
                        data={"grant_type": "client_credentials",
                              "client_id": other.client_id})
    assert _error(basic, 401, "invalid_client") == "client authentication failed"
    keyed, key, audience = _key_client(ref_app)
    signed = private_key_jwt_sign(key, keyed.client_id, audience, alg="RS256")
    assertion = client.post("/oauth/token",
                            data=_assertion_form(signed, client_id=other.client_id))
    assert _error(assertion, 401, "invalid_client") == "client authentication failed"
    assert _tokens(ref_app) == 0
    # Naming itself is fine (RFC 7521 4.2).
    same = client.post("/oauth/token", auth=(creds.client_id, creds.secret),
                       data={"grant_type": "client_credentials",
                             "client_id": creds.client_id})
    assert same.status_code == 200
    signed = private_key_jwt_sign(key, keyed.client_id, audience, alg="RS256")
    same = client.post("/oauth/token", data=_assertion_form(signed, client_id=keyed.client_id))
    assert same.status_code == 200
    assert _tokens(ref_app) == 2


def test_the_openapi_document_describes_oauth_errors_as_sent(app):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    for path in ("/oauth/token", "/oauth/introspect", "/oauth/revoke"):
        responses = spec["paths"][path]["post"]["responses"]
        assert "`errors`" not in responses["400"]["description"], path
        for status in ("400", "401", "429"):
            example = responses[status]["content"]["application/problem+json"]["example"]
            assert "errors" not in example and example["error_description"], (path, status)
            assert example["error"] in oauth2.OAUTH_ERRORS, (path, status)
