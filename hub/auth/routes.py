"""OAuth endpoints: token, introspection, revocation, server metadata, JWK set."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue

from hub.auth import admin_routes, guard, oauth2, writes
from hub.auth.oauth2 import HubAuthorizationServer, server_metadata
from hub.auth.ratelimit import RateLimiter
from hub.db import get_db

bp = Blueprint("oauth", __name__)
SERVER_KEY = "aeohub.oauth"


def init_app(app: Flask) -> None:
    """Register the authorization server's endpoints, the clients' admin API and the
    shared rate limiter the API's routes use through `hub.auth.guard`."""
    writes.install(get_db(app).engine)
    app.extensions[SERVER_KEY] = oauth2.create_server(app)
    app.extensions[guard.LIMITER_KEY] = RateLimiter(
        get_db(app), int(app.config["RATE_LIMIT_REQUESTS"]),
        int(app.config["RATE_LIMIT_WINDOW_SECONDS"]))
    app.register_blueprint(bp)
    app.register_blueprint(admin_routes.bp)


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
