"""Public pages: the company status look-up and the MID helper.

They are plain server-rendered forms using GET, so they work without JavaScript and
never open a session (no cookie). A look-up that finds no published authorisation, for
whatever reason, renders the same neutral page byte for byte. Look-ups are rate-limited
per client address through a database counter shared by every worker.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from hub import db
from hub.auth import windows
from hub.identifiers import IdentifierError, explain_mid
from hub.identifiers.countries import CANADIAN_PROVINCES
from hub.web import pages
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

MID_FIELDS = ("name", "street", "city", "country", "province")
MID_RULE_FIELDS = {"name": "name", "city": "city", "country": "country",
                   "province": "province", "province_required": "province"}


def limit_client(bucket: str, limit_key: str, window_key: str, default_limit: int,
                 default_window: int) -> None:
    """Abort with 429 when this client went over the bucket's limit."""
    config = current_app.config
    key = windows.client_digest(str(config["SECRET_KEY"]), request.remote_addr or "unknown")
    retry_after = windows.hit(db.get_db(), bucket, key,
                                int(config.get(limit_key, default_limit)),
                                int(config.get(window_key, default_window)))
    if retry_after is not None:
        response = current_app.make_response((render_template(
            "errors/error.html", status=429, title="Too many look-ups",
            message=f"You have made too many look-ups in a short time. Try again in "
                    f"{retry_after} seconds."), 429))
        response.headers["Retry-After"] = str(retry_after)
        abort(response)


@bp.app_context_processor
def site_footer() -> dict[str, Any]:
    """Who runs the hub, how to reach them and the privacy notice (configuration), for
    every page's footer."""
    config = current_app.config
    return {"site": {"operator": config.get("SITE_OPERATOR"),
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
    limit_client("lookup", "WEB_LOOKUP_LIMIT", "WEB_LOOKUP_WINDOW_SECONDS", 30, 60)
    session = db.session()
    operators = find_published(session, query)
    if not operators:
        return render_template("status/neutral.html")
    statuses = [company_status(session, operator) for operator in operators]
    return render_template("status/company.html", statuses=statuses,
                           answer_meanings=ANSWER_MEANINGS, status_meanings=STATUS_MEANINGS)


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
