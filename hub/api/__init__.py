"""The partner API v1: blueprint `/api/v1`, its OpenAPI document and the `/docs` page."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from hub.api import admin_routes, docs, routes

    app.config.setdefault("API_MAX_BODY_BYTES", routes.SINGLE_BODY_LIMIT)

    app.register_blueprint(routes.bp)
    app.register_blueprint(admin_routes.bp)
    app.register_blueprint(docs.bp)
