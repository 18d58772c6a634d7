"""The admin API of OAuth clients (`/api/v1/admin/clients`, scope `admin`).

List, create, disable, enable, rotate a client's secret or replace its keys, as
`aeohub clients` does.
What each does to live tokens:
- disable: every token of the client is revoked at once, and the client authenticates
  no more; enable lets it ask for new tokens (the revoked ones stay revoked).
- rotate-secret: the new secret works at once; the old one is still accepted for
  `overlap_seconds` (default `CLIENT_SECRET_OVERLAP_SECONDS`, 24 h; 0 refuses it at once);
  tokens issued before stay valid until they expire (at most `TOKEN_LIFETIME_SECONDS`),
  unless `revoke_tokens` is true (a leaked secret: rotate with overlap 0 and revoke).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import Schema

from hub import db
from hub.auth import service
from hub.auth.guard import require_scope
from hub.auth.models import OAuthClient
from hub.auth.schemas import ClientCreateSchema, RotateSchema
from hub.errors import InvalidInput

bp = Blueprint("auth_admin", __name__, url_prefix="/api/v1/admin/clients")




_create: Schema = ClientCreateSchema()
_rotate: Schema = RotateSchema()


def _body(*, optional: bool = False) -> Any:
    data = request.get_json(silent=True)
    if data is None and optional and not request.get_data():
        return {}
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object",
                           fields={"(body)": "not a JSON object"})
    return data


def client_dict(client: OAuthClient) -> dict[str, Any]:
    """A client as the admin API shows it (never a secret's hash)."""
    overlap_end = client.previous_secret_expires_at
    return {"client_id": client.client_id, "name": client.name,
            "programme": client.programme.code if client.programme else None,
            "scopes": list(client.scopes), "private_key_jwt": bool(client.jwks),
            "disabled": client.disabled_at is not None, "rate_limit": client.rate_limit,
            "previous_secret_accepted_until": overlap_end.isoformat() if overlap_end
            else None}


@bp.get("")
@require_scope("admin")
def list_clients() -> ResponseReturnValue:
    return jsonify({"clients": [client_dict(c) for c in service.list_clients(db.session())]})


@bp.post("")
@require_scope("admin")
def create_client() -> ResponseReturnValue:
    payload = _create.load(_body())
    created = service.create_client(db.session(), **payload)
    body = client_dict(created.client)
    if created.secret is not None:  # a client with keys has none
        body["client_secret"] = created.secret
    return jsonify(body), 201


@bp.post("/<client_id>/disable")
@require_scope("admin")
def disable_client(client_id: str) -> ResponseReturnValue:
    session = db.session()
    service.disable_client(session, client_id)
    return jsonify(client_dict(service.get_client(session, client_id)))


@bp.put("/<client_id>/keys")
@require_scope("admin")
def set_keys(client_id: str) -> ResponseReturnValue:
    """Replace a key client's public JWK set (the body is the set)."""
    jwks = _body()
    return jsonify(client_dict(service.set_keys(db.session(), client_id, jwks)))


@bp.post("/<client_id>/enable")
@require_scope("admin")
def enable_client(client_id: str) -> ResponseReturnValue:
    return jsonify(client_dict(service.enable_client(db.session(), client_id)))


@bp.post("/<client_id>/rotate-secret")
@require_scope("admin")
def rotate_secret(client_id: str) -> ResponseReturnValue:
    options = _rotate.load(_body(optional=True))
    overlap = options["overlap_seconds"]
    if overlap is None:
        overlap = int(current_app.config["CLIENT_SECRET_OVERLAP_SECONDS"])
    session = db.session()
    secret = service.rotate_secret(session, client_id, overlap_seconds=overlap,
                                   revoke_tokens=options["revoke_tokens"])
    return jsonify({**client_dict(service.get_client(session, client_id)),
                    "client_secret": secret})
