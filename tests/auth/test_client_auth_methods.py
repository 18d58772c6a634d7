"""Client authentication: one method per client, one method per request, one failure answer.

A client registered with keys has no secret and uses only private_key_jwt; a secret client
cannot use assertions; two methods in one request are `invalid_request`; an unknown
client, a wrong secret and a method the client may not use all get the same
`invalid_client` answer, each after the same scrypts (the current and the previous
secret's, so that time tells nothing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from authlib.oauth2.rfc7523 import private_key_jwt_sign
from joserfc.jwk import RSAKey

from hub import create_app
from hub.auth import service
from hub.db import Database
from hub.errors import Conflict
from tests.auth.hubkit import Credentials, live_server, load_reference, make_client

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
GRANT = {"grant_type": "client_credentials"}


@pytest.fixture
def server(committed_db: Database) -> Iterator[str]:
    load_reference(committed_db)
    app = create_app({"ENV": "testing", "DATABASE_URL": committed_db.url})
    with live_server(app) as base:
        yield base
    app.extensions["aeohub.db"].dispose()


@pytest.fixture
def key() -> RSAKey:
    return RSAKey.generate_key(2048)


def _key_client(database: Database, key: RSAKey) -> Credentials:
    public = {"keys": [{**key.as_dict(private=False), "kid": "k1"}]}
    return make_client(database, "EU-AEO", "verify", jwks=public)


def _assertion(key: RSAKey, client_id: str, base: str) -> dict[str, str]:
    signed = private_key_jwt_sign(key, client_id, base + "/oauth/token", alg="RS256")
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": signed}


def _post(base: str, data: dict[str, str], auth: Any = None, path: str = "/oauth/token"
          ) -> requests.Response:
    with requests.post(base + path, data=data, auth=auth, timeout=10) as response:
        return response


def test_a_client_with_keys_has_no_secret_and_uses_only_its_keys(server, committed_db, key,
                                                                 runner):
    creds = _key_client(committed_db, key)
    assert creds.secret is None
    with committed_db.session_scope() as session:
        assert service.get_client(session, creds.client_id).secret_hash is None
    assert _post(server, {**GRANT, **_assertion(key, creds.client_id, server)}).status_code \
        == 200
    # Even a secret stored for it (a row from before this rule) is never accepted.
    with committed_db.session_scope(write=True) as session:
        service.get_client(session, creds.client_id).secret_hash = service.hash_secret("s")
    refused = _post(server, GRANT, auth=(creds.client_id, "s"))
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    refused = _post(server, {**GRANT, "client_id": creds.client_id, "client_secret": "s"})
    assert refused.json()["error"] == "invalid_client"
    # Nor can one be given to it.
    with committed_db.session_scope(write=True) as session, pytest.raises(Conflict):
        service.rotate_secret(session, creds.client_id)


def test_a_secret_client_cannot_use_an_assertion(server, committed_db, key):
    plain = make_client(committed_db, "EU-AEO", "verify")
    refused = _post(server, {**GRANT, **_assertion(key, plain.client_id, server)})
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    assert refused.json()["detail"] == "client authentication failed"


def test_two_methods_in_one_request_are_invalid_request(server, committed_db, key):
    creds = make_client(committed_db, "EU-AEO", "verify")
    both = _post(server, {**GRANT, "client_id": creds.client_id,
                          "client_secret": creds.secret or ""},
                 auth=(creds.client_id, creds.secret))
    assert both.status_code == 400
    assert both.json()["error"] == "invalid_request"
    keyed = _key_client(committed_db, key)
    mixed = _post(server, {**GRANT, **_assertion(key, keyed.client_id, server)},
                  auth=(creds.client_id, creds.secret))
    assert mixed.status_code == 400
    assert mixed.json()["error"] == "invalid_request"
    # Introspection and revocation follow the same rule.
    for path in ("/oauth/introspect", "/oauth/revoke"):
        answer = _post(server, {"token": "x", "client_id": creds.client_id,
                                "client_secret": creds.secret or ""},
                       auth=(creds.client_id, creds.secret), path=path)
        assert answer.json()["error"] == "invalid_request", path


def test_unknown_client_and_wrong_secret_are_one_answer_at_one_cost(
        server, committed_db, monkeypatch):
    creds = make_client(committed_db, "EU-AEO", "verify")
    scrypts: list[int] = []
    real = hashlib.scrypt

    def counting(*args: Any, **kwargs: Any) -> bytes:
        scrypts.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(service.hashlib, "scrypt", counting)
    answers = []
    for auth in ((creds.client_id, "wrong"), ("aeo_nobody", "wrong")):
        scrypts.clear()
        response = _post(server, GRANT, auth=auth)
        answers.append((response.status_code, response.json()["error"],
                        response.json()["detail"]))
        assert len(scrypts) == 2, auth
    for form in ({"client_id": creds.client_id, "client_secret": "wrong"},
                 {"client_id": "aeo_nobody", "client_secret": "wrong"}):
        scrypts.clear()
        response = _post(server, {**GRANT, **form})
        answers.append((response.status_code, response.json()["error"],
                        response.json()["detail"]))
        assert len(scrypts) == 2, form
    assert len(set(answers)) == 1
    assert answers[0][:2] == (401, "invalid_client")
