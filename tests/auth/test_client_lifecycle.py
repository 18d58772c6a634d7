"""A client's lifecycle, from the command line and the admin API: disable and enable
again, roll a secret over with an overlap, and what each does to live tokens."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from authlib.oauth2.rfc7523 import private_key_jwt_sign
from flask import Flask
from joserfc.jwk import RSAKey
from sqlalchemy import update

from hub import clock, db
from hub.auth.guard import principal_of
from hub.auth.models import OAuthClient
from hub.db import get_db
from tests.auth.hubkit import Credentials, bearer, make_client

GRANT = {"grant_type": "client_credentials"}


def _token(app: Flask, client_id: str, secret: str | None) -> Any:
    return app.test_client().post("/oauth/token", data=GRANT, auth=(client_id, secret or ""))


def _active(app: Flask, token: str) -> bool:
    with app.app_context():
        return principal_of(db.reader(), token) is not None


def _cli(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=["clients", *args])
    assert result.exit_code == 0, result.output
    return str(result.output)


def _partner(app: Flask) -> tuple[Credentials, str]:
    creds = make_client(get_db(app), "EU-AEO", "verify")
    answer = _token(app, creds.client_id, creds.secret)
    assert answer.status_code == 200
    return creds, answer.get_json()["access_token"]


def test_a_disabled_client_can_be_enabled_again(ref_app):
    creds, token = _partner(ref_app)
    assert "disabled; 1 token(s) revoked" in _cli(ref_app, "disable", creds.client_id)
    assert _token(ref_app, creds.client_id, creds.secret).status_code == 401
    assert not _active(ref_app, token)
    _cli(ref_app, "enable", creds.client_id)
    answer = _token(ref_app, creds.client_id, creds.secret)
    assert answer.status_code == 200
    assert _active(ref_app, answer.get_json()["access_token"])
    assert not _active(ref_app, token)  # revoked tokens stay revoked


def test_a_rotated_secret_overlaps_then_the_old_one_is_refused(ref_app):
    creds, token = _partner(ref_app)
    rotated = json.loads(_cli(ref_app, "rotate-secret", creds.client_id, "--json"))
    assert rotated["previous_secret_accepted_seconds"] == 24 * 3600
    new = rotated["client_secret"]
    assert _token(ref_app, creds.client_id, new).status_code == 200
    assert _token(ref_app, creds.client_id, creds.secret).status_code == 200  # overlap
    assert _active(ref_app, token)  # tokens issued before stay valid until they expire
    # Once the overlap is over, the old secret is refused.
    with get_db(ref_app).session_scope(write=True) as session:
        session.execute(update(OAuthClient).values(
            previous_secret_expires_at=clock.now() - dt.timedelta(seconds=1)))
    assert _token(ref_app, creds.client_id, creds.secret).status_code == 401
    assert _token(ref_app, creds.client_id, new).status_code == 200


def test_rotation_without_overlap_and_with_revocation(ref_app):
    creds, token = _partner(ref_app)
    rotated = json.loads(_cli(ref_app, "rotate-secret", creds.client_id, "--overlap", "0",
                              "--revoke-tokens", "--json"))
    assert _token(ref_app, creds.client_id, creds.secret).status_code == 401
    assert not _active(ref_app, token)
    assert _token(ref_app, creds.client_id, rotated["client_secret"]).status_code == 200


def test_the_admin_api_enables_and_rotates(ref_app):
    database = get_db(ref_app)
    admin = bearer(database, make_client(database, None, "admin"))
    creds, _token_value = _partner(ref_app)
    client = ref_app.test_client()
    base = f"/api/v1/admin/clients/{creds.client_id}"
    assert client.post(base + "/disable", headers=admin).get_json()["disabled"] is True
    enabled = client.post(base + "/enable", headers=admin)
    assert enabled.status_code == 200
    assert enabled.get_json()["disabled"] is False
    rolled = client.post(base + "/rotate-secret", headers=admin)
    assert rolled.status_code == 200
    assert rolled.get_json()["previous_secret_accepted_until"] is not None
    assert _token(ref_app, creds.client_id, creds.secret).status_code == 200
    now = client.post(base + "/rotate-secret", headers=admin,
                      json={"overlap_seconds": 0, "revoke_tokens": True}).get_json()
    assert now["previous_secret_accepted_until"] is None
    assert _token(ref_app, creds.client_id, rolled.get_json()["client_secret"]
                  ).status_code == 401
    assert _token(ref_app, creds.client_id, now["client_secret"]).status_code == 200
    bad = client.post(base + "/rotate-secret", headers=admin, json={"overlap_seconds": -1})
    assert bad.status_code == 400
    assert bad.get_json()["errors"][0]["field"] == "overlap_seconds"
    listed = client.get("/api/v1/admin/clients", headers=admin).get_json()["clients"]
    assert {c["client_id"] for c in listed} >= {creds.client_id}
    assert all("secret" not in key or key == "previous_secret_accepted_until"
               for c in listed for key in c)
    # Only admin clients reach these routes.
    assert client.post(base + "/enable", headers=bearer(database, creds)).status_code == 403


def test_a_key_client_rolls_its_key_over(ref_app, tmp_path):
    old, new = RSAKey.generate_key(2048), RSAKey.generate_key(2048)

    def key_set(*keys: Any) -> dict[str, Any]:
        return {"keys": [{**k.as_dict(private=False), "kid": f"k{i}"}
                         for i, k in enumerate(keys)]}

    database = get_db(ref_app)
    creds = make_client(database, "EU-AEO", "verify", jwks=key_set(old))
    audience = ref_app.config.get("ISSUER") or "http://127.0.0.1:5000"

    kids = {id(old): "k0", id(new): "k1"}

    def token_with(key: Any) -> int:
        # With several keys registered, the assertion names its key (kid).
        assertion = private_key_jwt_sign(key, creds.client_id, audience + "/oauth/token",
                                         alg="RS256", header={"alg": "RS256",
                                                              "kid": kids[id(key)]})
        return int(ref_app.test_client().post("/oauth/token", data={
            **GRANT, "client_assertion": assertion,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        }).status_code)

    both = tmp_path / "both.json"
    both.write_text(json.dumps(key_set(old, new)))
    assert "2 key(s)" in _cli(ref_app, "set-keys", creds.client_id, "--jwks", str(both))
    assert token_with(old) == 200
    assert token_with(new) == 200
    admin = bearer(database, make_client(database, None, "admin"))
    answer = ref_app.test_client().put(f"/api/v1/admin/clients/{creds.client_id}/keys",
                                       headers=admin,
                                       json={"keys": [{**new.as_dict(private=False),
                                                       "kid": "k1"}]})
    assert answer.status_code == 200
    assert token_with(old) == 401
    assert token_with(new) == 200
    # Private keys are refused; a secret client has no keys to replace.
    private = ref_app.test_client().put(f"/api/v1/admin/clients/{creds.client_id}/keys",
                                        headers=admin,
                                        json={"keys": [new.as_dict(private=True)]})
    assert private.status_code == 400
    secret_client = make_client(database, "EU-AEO", "verify")
    refused = ref_app.test_client().put(
        f"/api/v1/admin/clients/{secret_client.client_id}/keys", headers=admin,
        json=key_set(new))
    assert refused.status_code == 409
