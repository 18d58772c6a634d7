"""Web pages: public company status look-ups, the MID helper and the customs-IT dashboard.

Server-rendered Jinja with one small stylesheet shipped in the package; no script is
needed anywhere (charts are inline SVG): the company page's copy buttons are a small
script of the hub's own that only adds them. `init_app` registers the two blueprints, an HTML
404 page for addresses outside the API, and security headers on every page.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from hub.errors import problem_response, wants_problem

#: Paths that belong to these pages (security headers).
WEB_PREFIXES = ("/dashboard", "/status", "/mid", "/static/web", "/privacy", "/favicon.ico")
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'self'; img-src 'self' data:; "
                           "script-src 'self'; "
                           "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def _is_web_page() -> bool:
    return request.path == "/" or request.path.startswith(WEB_PREFIXES)


def _format_time(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def init_app(app: Flask) -> None:
    from hub.web import charts, dashboard_routes, pages, routes, security

    app.session_interface = security.CookieSessions()
    security.init_app(app)

    # Flask's defaults leave SameSite unset; the dashboard wants Lax (CSRF defence in depth).
    if not app.config.get("SESSION_COOKIE_SAMESITE"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    if app.config.get("ENV") == "production" and not app.config.get("WEB_INSECURE_COOKIES"):
        app.config["SESSION_COOKIE_SECURE"] = True
    app.jinja_env.filters["time"] = _format_time
    app.jinja_env.filters["duration"] = charts.human_duration
    app.register_blueprint(routes.bp)
    app.register_blueprint(dashboard_routes.bp)

    @app.errorhandler(404)
    def _not_found(exc: HTTPException) -> Any:
        if wants_problem():
            return problem_response(404, exc.description or "Not Found")
        return pages.render_error(404, "There is no page at this address.")

    @app.after_request
    def _headers(response: Response) -> Response:
        if _is_web_page():
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")
            if request.path.startswith("/dashboard"):
                response.headers.setdefault("Cache-Control", "no-store")
        return response
