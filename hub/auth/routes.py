"""OAuth endpoints: token, introspection, revocation, server metadata, JWK set."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from hub.auth.oauth2 import HubAuthorizationServer, server_metadata

bp = Blueprint("oauth", __name__)
SERVER_KEY = "aeohub.oauth"


def _server() -> HubAuthorizationServer:
    server: HubAuthorizationServer = current_app.extensions[SERVER_KEY]
    return server


@bp.post("/oauth/token")
def token() -> ResponseReturnValue:
    return _server().answer(None)


@bp.post("/oauth/introspect")
def introspect() -> ResponseReturnValue:
    return _server().answer("introspection")


@bp.post("/oauth/revoke")
def revoke() -> ResponseReturnValue:
    return _server().answer("revocation")


@bp.get("/.well-known/oauth-authorization-server")
def metadata() -> ResponseReturnValue:
    return jsonify(server_metadata())


@bp.get("/.well-known/jwks.json")
def jwks() -> ResponseReturnValue:
    # Access tokens are opaque (looked up by digest), so the hub signs nothing that
    # partners verify; the set is published empty so that the metadata's jwks_uri resolves.
    return jsonify({"keys": []})
