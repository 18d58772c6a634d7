"""HTML error pages for the web pages (the API keeps its problem documents)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, abort, current_app, render_template, request
from werkzeug.exceptions import HTTPException

from hub import db
from hub.auth import windows
from hub.errors import HubError

log = logging.getLogger(__name__)

ERROR_TITLES = {400: "The request could not be used", 401: "Sign-in needed",
                403: "Not allowed", 404: "Page not found", 405: "Not allowed here",
                409: "Conflict", 429: "Too many requests", 500: "Something went wrong"}


def render_error(status: int, message: str, *, title: str | None = None) -> Response:
    body = render_template("errors/error.html", status=status,
                           title=title or ERROR_TITLES.get(status, "Error"), message=message)
    return current_app.make_response((body, status))


def web_error(exc: HTTPException) -> Any:
    if isinstance(exc.response, Response):
        return exc.response  # the view built the page itself (the 429 page)
    status = exc.code or 500
    return render_error(status, exc.description or ERROR_TITLES.get(status, "Error"))


def web_hub_error(exc: HubError) -> Response:
    return render_error(exc.status, exc.detail)


def web_unexpected(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return render_error(500, "The hub could not show this page. The error has been logged.")


def refuse_nul() -> None:
    """Abort with 400 when the query or the form holds a NUL character: no field of the
    hub can hold one (PostgreSQL's text cannot), so it is the request's error, refused
    before any view passes it to the database."""
    for where, values in (("address", request.args), ("form", request.form)):
        for name, value in values.items(multi=True):
            if "\x00" in name or "\x00" in value:
                abort(400, description=f"The {where} holds a NUL character, which no field "
                                       "of the hub can hold.")


def register(bp: Any) -> None:
    """Give a blueprint's views HTML error pages, and refuse NUL characters first."""
    bp.before_request(refuse_nul)
    bp.register_error_handler(HTTPException, web_error)
    bp.register_error_handler(HubError, web_hub_error)
    bp.register_error_handler(Exception, web_unexpected)


#: What each bucket counts, as its 429 page says it.
_COUNTED = {"lookup": "look-ups", "login": "sign-in attempts"}


def limit_client(bucket: str, limit_key: str, window_key: str, default_limit: int,
                 default_window: int, *, count: bool = True) -> None:
    """Abort with 429 when this client went over the bucket's limit. `count=False` only
    looks (a bucket of failures: the caller counts one when it fails)."""
    config = current_app.config
    key = windows.client_digest(str(config["SECRET_KEY"]), request.remote_addr or "unknown")
    check = windows.hit if count else windows.full
    retry_after = check(db.get_db(), bucket, key, int(config.get(limit_key, default_limit)),
                        int(config.get(window_key, default_window)))
    if retry_after is not None:
        response = current_app.make_response((render_template(
            "errors/error.html", status=429, title=f"Too many {_COUNTED[bucket]}",
            message=f"You have made too many {_COUNTED[bucket]} in a short time. Try "
                    f"again in {retry_after} seconds."), 429))
        response.headers["Retry-After"] = str(retry_after)
        abort(response)
