"""Public pages: the company status look-up and the MID helper.

They are plain server-rendered forms using GET, so they work without JavaScript and
never open a session (no cookie). A look-up that finds no published authorisation, for
whatever reason, renders the same neutral page byte for byte. Look-ups are rate-limited
per client address through a database counter shared by every worker.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from hub import db
from hub.auth.oauth2 import issuer
from hub.errors import problem_response, wants_problem
from hub.identifiers import IdentifierError, explain_mid
from hub.identifiers.countries import CANADIAN_PROVINCES
from hub.web import charts, dashboard_routes, pages, security
from hub.web.status import (
    ANSWER_MEANINGS,
    MAX_QUERY_LENGTH,
    STATUS_MEANINGS,
    company_status,
    find_published,
)

bp = Blueprint("public", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/web")
pages.register(bp)

#: Paths that belong to these pages (security headers).
WEB_PREFIXES = ("/dashboard", "/status", "/mid", "/static/web", "/privacy", "/favicon.ico")
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'self'; img-src 'self' data:; "
                           "script-src 'self'; "
                           "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def _is_web_page() -> bool:
    return request.path == "/" or request.path.startswith(WEB_PREFIXES)


def public_url(endpoint: str, **values: Any) -> str:
    """A page's address as the public knows it: `ISSUER` and the page's path, never the
    request's Host header, which any caller chooses (docs/security.md)."""
    return issuer() + url_for(endpoint, **values).removeprefix(request.script_root)


def relative_redirects() -> None:
    """Werkzeug's redirect to a route's own address (`/dashboard` to `/dashboard/`) is
    absolute, built from the request's Host header: it keeps only the path and query."""
    found = request.routing_exception
    if isinstance(found, RequestRedirect):
        target = urlsplit(found.new_url)
        # one leading slash: `//host/...` would name another host
        path = "/" + target.path.lstrip("/")
        request.routing_exception = RequestRedirect(
            f"{path}?{target.query}" if target.query else path)


def _format_time(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def init_app(app: Flask) -> None:
    app.session_interface = security.CookieSessions()
    security.init_app(app)
    app.before_request(relative_redirects)

    # Flask's defaults leave SameSite unset; the dashboard wants Lax (CSRF defence in depth).
    if not app.config.get("SESSION_COOKIE_SAMESITE"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    if app.config.get("ENV") == "production" and not app.config.get("WEB_INSECURE_COOKIES"):
        app.config["SESSION_COOKIE_SECURE"] = True
    app.jinja_env.filters["time"] = _format_time
    app.jinja_env.filters["duration"] = charts.human_duration
    app.register_blueprint(bp)
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

MID_FIELDS = ("name", "street", "city", "country", "province")
MID_RULE_FIELDS = {"name": "name", "city": "city", "country": "country",
                   "province": "province", "province_required": "province"}


@bp.app_context_processor
def site_footer() -> dict[str, Any]:
    """Who runs the hub, how to reach them and the privacy notice (configuration), for
    every page's footer."""
    config = current_app.config
    return {"site": {"administrator": config.get("HUB_ADMINISTRATOR"),
                     "contact": config.get("SITE_CONTACT"),
                     "privacy_url": config.get("SITE_PRIVACY_URL")
                     or url_for("public.privacy")}}


@bp.get("/favicon.ico")
def favicon() -> ResponseReturnValue:
    # Browsers ask for /favicon.ico whatever the page links; the icon itself is an SVG.
    return redirect(url_for("public.static", filename="favicon.svg"), 301)


@bp.get("/privacy")
def privacy() -> ResponseReturnValue:
    return render_template("privacy.html")


@bp.get("/")
def home() -> ResponseReturnValue:
    return render_template("status/lookup.html")


@bp.get("/status")
def status() -> ResponseReturnValue:
    query = request.args.get("q", "")
    if not query.strip():
        return render_template("status/lookup.html", empty=True), 400
    if len(query) > MAX_QUERY_LENGTH * 2:
        return render_template("status/lookup.html", too_long=True), 400
    pages.limit_client("lookup", "WEB_LOOKUP_LIMIT", "WEB_LOOKUP_WINDOW_SECONDS", 30, 60)
    session = db.session()
    operators = find_published(session, query)
    if not operators:
        return render_template("status/neutral.html")
    statuses = [company_status(session, operator) for operator in operators]
    return render_template("status/company.html", statuses=statuses,
                           answer_meanings=ANSWER_MEANINGS, status_meanings=STATUS_MEANINGS,
                           live_url=public_url("public.status", q=query))


@bp.get("/mid")
def mid_helper() -> ResponseReturnValue:
    values = {name: request.args.get(name, "").strip() for name in MID_FIELDS}
    provinces = sorted((name, abbr, code) for abbr, (code, name) in CANADIAN_PROVINCES.items())
    context: dict[str, Any] = {"values": values, "provinces": provinces, "parts": None,
                               "error": None, "error_field": None}
    if not any(values.values()):
        return render_template("mid.html", **context)
    try:
        parts = explain_mid(values["name"], values["street"], values["city"],
                            values["country"], values["province"] or None)
    except IdentifierError as exc:
        context["error"] = exc.detail or str(exc)
        if exc.rule == "province_required":
            # The list below offers the MID's own province codes (XO Ontario ...).
            context["error"] = ("A Canadian MID starts with the code of the province or "
                                "territory, not CA: choose it in the list below, e.g. "
                                "Ontario (XO).")
        context["error_field"] = MID_RULE_FIELDS.get(exc.rule, "name")
        return render_template("mid.html", **context), 400
    context["parts"] = parts
    return render_template("mid.html", **context)
