"""One error format: `application/problem+json` (RFC 9457).

Every error under `/api/`, `/oauth/` and `/.well-known/`, and on the health endpoints, is
a problem document with `type`, `title`, `status`, `detail`, and for validation errors an
`errors` list naming each failing field (`{"field": "trader.scheme", "detail": "..."}`).
Domain code raises `HubError` subclasses; marshmallow `ValidationError` is mapped here and
nowhere else. A 500 never leaks a traceback: it is logged with the request id and answered
with a generic problem.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, json, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from hub.logs import current_request_id

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://aeohub.example/problems/"
PROBLEM_PREFIXES = ("/api/", "/oauth/", "/.well-known/", "/healthz", "/readyz", "/metrics")


class HubError(Exception):
    """A domain error with an HTTP status and a problem type."""

    status = 400
    type_slug = "bad-request"
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        fields: Mapping[str, Iterable[str] | str] | None = None,
        status: int | None = None,
        title: str | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fields = {k: [v] if isinstance(v, str) else list(v) for k, v in (fields or {}).items()}
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    def to_problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.type_slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.fields:
            body["errors"] = [
                {"field": field, "detail": message}
                for field, messages in sorted(self.fields.items())
                for message in messages
            ]
        body.update(self.extra)
        return body


class InvalidInput(HubError):
    status = 400
    type_slug = "invalid-input"
    title = "Invalid input"


class NotFound(HubError):
    status = 404
    type_slug = "not-found"
    title = "Not found"


class Forbidden(HubError):
    status = 403
    type_slug = "forbidden"
    title = "Forbidden"


class Conflict(HubError):
    status = 409
    type_slug = "conflict"
    title = "Conflict"


class TooManyRequests(HubError):
    status = 429
    type_slug = "rate-limited"
    title = "Too many requests"


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested error messages into `{"a.b.0.c": [messages]}`."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            name = "(body)" if key == "_schema" and not prefix else str(key)
            path = f"{prefix}.{name}" if prefix and key != "_schema" else (prefix or name)
            for sub_path, sub_messages in flatten_messages(value, path).items():
                flat.setdefault(sub_path, []).extend(sub_messages)
    elif isinstance(messages, list | tuple):
        if all(isinstance(m, str) for m in messages):
            flat[prefix or "(body)"] = [str(m) for m in messages]
        else:
            for item in messages:
                for sub_path, sub_messages in flatten_messages(item, prefix).items():
                    flat.setdefault(sub_path, []).extend(sub_messages)
    else:
        flat[prefix or "(body)"] = [str(messages)]
    return flat


def from_validation_error(exc: ValidationError) -> InvalidInput:
    fields = flatten_messages(exc.messages)
    names = ", ".join(sorted(fields))
    return InvalidInput(f"the request has invalid fields: {names}", fields=fields)


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    type_slug: str | None = None,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    error = HubError(
        detail,
        status=status,
        title=title or phrase,
        extra=extra,
        headers=headers,
    )
    error.type_slug = type_slug or phrase.lower().replace(" ", "-").replace("'", "")
    return render_problem(error)


def render_problem(error: HubError) -> Response:
    body = error.to_problem()
    request_id = current_request_id()
    if request_id:
        body.setdefault("request_id", request_id)
    response = Response(json.dumps(body), status=error.status, mimetype=PROBLEM_MEDIA_TYPE)
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def wants_problem() -> bool:
    return request.path.startswith(PROBLEM_PREFIXES) or request.accept_mimetypes.best in (
        "application/json",
        PROBLEM_MEDIA_TYPE,
    )


def init_app(app: Flask) -> None:
    """Register the handlers that turn every error into a problem document."""

    @app.errorhandler(HubError)
    def _hub_error(exc: HubError) -> Response:
        return render_problem(exc)

    @app.errorhandler(ValidationError)
    def _validation_error(exc: ValidationError) -> Response:
        return render_problem(from_validation_error(exc))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        if not wants_problem():
            return exc
        status = exc.code or 500
        detail = exc.description or HTTPStatus(status).phrase
        headers: dict[str, str] = {}
        if status == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            headers["Allow"] = ", ".join(sorted(exc.valid_methods))  # type: ignore[attr-defined]
        if status == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            detail = f"the request body is larger than the limit of {limit} bytes"
        return problem_response(status, detail, headers=headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        if isinstance(exc, HTTPException):  # pragma: no cover - handled above
            return exc
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(
            500,
            "the hub could not complete the request; the error has been logged with its "
            "request id",
            type_slug="internal-error",
        )
