"""OAuth 2.0 for partner agencies: clients, tokens, scopes and the data-sharing policy.

`init_app` registers the authorization server's endpoints (`/oauth/*`, `/.well-known/*`),
the clients' admin API (`/api/v1/admin/clients`) and the shared rate limiter that API
routes use through `hub.auth.guard`.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from hub.auth import admin_routes, guard, oauth2, routes, writes
    from hub.auth.ratelimit import RateLimiter
    from hub.db import get_db

    app.config.setdefault("RATE_LIMIT_REQUESTS", 20000)
    app.config.setdefault("RATE_LIMIT_WINDOW_SECONDS", 60)
    writes.install(get_db(app).engine)
    app.extensions[routes.SERVER_KEY] = oauth2.create_server(app)
    app.extensions[guard.LIMITER_KEY] = RateLimiter(
        get_db(app), int(app.config["RATE_LIMIT_REQUESTS"]),
        int(app.config["RATE_LIMIT_WINDOW_SECONDS"]))
    app.register_blueprint(routes.bp)
    app.register_blueprint(admin_routes.bp)
