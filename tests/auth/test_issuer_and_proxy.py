"""The configured issuer, the proxy setting, and Authlib's errors as OAuth answers.

The issuer (`ISSUER`) is the base of the metadata, introspection's `iss`, the audience a
private_key_jwt assertion must name and the OpenAPI server; a caller's Host header changes
none of them. Behind `TRUSTED_PROXIES` proxies, X-Forwarded-Proto gives the scheme; without
the setting the header is ignored. Plain http from a host that is not loopback is an
`invalid_request` answer (Authlib's InsecureTransportError), never a 500.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from authlib.oauth2.rfc7523 import private_key_jwt_sign
from flask import Flask
from joserfc.jwk import RSAKey

from hub import create_app
from hub.db import Database
from tests.auth.hubkit import live_server, load_reference, make_client

ISSUER = "https://hub.example.org"
EVIL = {"Host": "evil.example"}
GRANT = {"grant_type": "client_credentials"}
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def serve(committed_db: Database) -> Iterator[Callable[..., Any]]:
    """Start the hub with extra settings; yields its base URL."""
    load_reference(committed_db)
    apps: list[Flask] = []
    stack: list[Any] = []

    def start(**settings: Any) -> str:
        app = create_app({"ENV": "testing", "DATABASE_URL": committed_db.url, **settings})
        apps.append(app)
        context = live_server(app)
        stack.append(context)
        return context.__enter__()

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)
    for app in apps:
        app.extensions["aeohub.db"].dispose()


def _get(url: str, headers: dict[str, str] | None = None) -> requests.Response:
    with requests.get(url, headers=headers, timeout=10) as response:
        return response


def _post(url: str, data: dict[str, str], headers: dict[str, str] | None = None,
          auth: Any = None) -> requests.Response:
    with requests.post(url, data=data, headers=headers, auth=auth, timeout=10) as response:
        return response


def test_the_host_header_changes_no_published_url(serve, committed_db):
    base = serve(ISSUER=ISSUER)
    for headers in (None, EVIL):
        metadata = _get(base + "/.well-known/oauth-authorization-server", headers).json()
        assert metadata["issuer"] == ISSUER
        assert metadata["token_endpoint"] == ISSUER + "/oauth/token"
        assert all("evil" not in str(value) for value in metadata.values())
        spec = _get(base + "/api/v1/openapi.json", headers).json()
        assert spec["servers"] == [{"url": ISSUER + "/"}]
    creds = make_client(committed_db, "EU-AEO", "verify")
    token = _post(base + "/oauth/token", GRANT, auth=(creds.client_id, creds.secret)).json()
    answer = _post(base + "/oauth/introspect", {"token": token["access_token"]},
                   auth=(creds.client_id, creds.secret)).json()
    assert answer["active"] is True
    assert answer["iss"] == ISSUER


def test_an_assertion_must_name_the_configured_token_endpoint(serve, committed_db):
    base = serve(ISSUER=ISSUER)
    key = RSAKey.generate_key(2048)
    creds = make_client(committed_db, "EU-AEO", "verify",
                        jwks={"keys": [{**key.as_dict(private=False), "kid": "k1"}]})

    def assertion(audience: str) -> dict[str, str]:
        return {**GRANT, "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": private_key_jwt_sign(key, creds.client_id, audience,
                                                         alg="RS256")}

    # The address the request reached, or the issuer alone, is not the audience.
    for audience in (base + "/oauth/token", ISSUER, "http://evil.example/oauth/token"):
        refused = _post(base + "/oauth/token", assertion(audience))
        assert refused.json()["error"] == "invalid_client", audience
    assert _post(base + "/oauth/token", assertion(ISSUER + "/oauth/token")).status_code == 200


def test_plain_http_from_another_host_is_an_oauth_error_not_a_500(serve, committed_db):
    base = serve(ISSUER=ISSUER)
    creds = make_client(committed_db, "EU-AEO", "verify")
    for path in ("/oauth/token", "/oauth/introspect", "/oauth/revoke"):
        answer = _post(base + path, {**GRANT, "token": "x"}, headers=EVIL,
                       auth=(creds.client_id, creds.secret))
        assert answer.status_code == 400, path
        assert answer.json()["error"] == "invalid_request"
        assert "https" in answer.json()["error_description"]
        assert answer.headers["Content-Type"].startswith("application/problem+json")


def test_forwarded_scheme_counts_only_behind_a_trusted_proxy(serve, committed_db):
    creds = make_client(committed_db, "EU-AEO", "verify")
    forwarded = {**EVIL, "X-Forwarded-Proto": "https"}
    direct = serve(ISSUER=ISSUER)
    refused = _post(direct + "/oauth/token", GRANT, headers=forwarded,
                    auth=(creds.client_id, creds.secret))
    assert refused.status_code == 400
    proxied = serve(ISSUER=ISSUER, TRUSTED_PROXIES=1)
    granted = _post(proxied + "/oauth/token", GRANT, headers=forwarded,
                    auth=(creds.client_id, creds.secret))
    assert granted.status_code == 200
    assert granted.json()["token_type"].lower() == "bearer"
