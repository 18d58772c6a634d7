"""The partner API v1: blueprint `/api/v1`, its OpenAPI document and the `/docs` page."""

from __future__ import annotations

from flask import Flask, Response, g, request

#: The revision of the IETF httpapi rate-limit header fields draft the answers follow.
RATELIMIT_DRAFT = "draft-ietf-httpapi-ratelimit-headers-10"
#: The name of the hub's one quota policy in those fields.
RATELIMIT_POLICY = "default"


def ratelimit_fields(response: Response) -> Response:
    """`RateLimit-Policy` and `RateLimit` (RATELIMIT_DRAFT) on every answer to a client
    whose token was checked: its quota per window, the units left and the seconds until
    the window resets."""
    from hub.auth.guard import QUOTA_KEY

    quota = g.get(QUOTA_KEY)
    if quota is not None:
        response.headers["RateLimit-Policy"] = (
            f'"{RATELIMIT_POLICY}";q={quota.limit};w={quota.window_seconds}')
        response.headers["RateLimit"] = (
            f'"{RATELIMIT_POLICY}";r={quota.remaining};t={quota.reset}')
    return response


def refuse_nul_paths() -> None:
    """Nothing is named with a NUL character (no database column takes one): a path
    holding one names nothing, before any lookup sends it to the database."""
    if "\x00" in request.path:
        from hub.errors import NotFound

        raise NotFound("no resource has a NUL character in its name",
                       fields={"(path)": "NUL character"})


def init_app(app: Flask) -> None:
    from hub.api import admin_routes, docs, routes

    app.config.setdefault("API_MAX_BODY_BYTES", routes.SINGLE_BODY_LIMIT)
    app.config.setdefault("RATE_LIMIT_REQUEST_COST", 1)
    app.config.setdefault("RATE_LIMIT_BATCH_ITEM_COST", 1)
    app.after_request(ratelimit_fields)
    app.before_request(refuse_nul_paths)

    app.register_blueprint(routes.bp)
    app.register_blueprint(admin_routes.bp)
    app.register_blueprint(docs.bp)
