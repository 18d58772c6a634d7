"""HTML error pages for the web pages (the API keeps its problem documents)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, current_app, render_template, request
from werkzeug.exceptions import HTTPException

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


def register(bp: Any) -> None:
    """Give a blueprint's views HTML error pages."""
    bp.register_error_handler(HTTPException, web_error)
    bp.register_error_handler(HubError, web_hub_error)
    bp.register_error_handler(Exception, web_unexpected)
