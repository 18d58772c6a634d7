"""Logging: a request id on every request and log record, JSON or text output.

Secrets never reach the logs: the formatter masks bearer tokens, client secrets and
passwords that slip into a message, as a last line of defence behind code that never logs
them in the first place.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

from flask import Flask, Response, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-Id"
_SECRET_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)((?:client_secret|password|token|secret|authorization)[\"']?\s*[:=]\s*[\"']?)"
               r"[^\s\"'&,}]+"),
]


def redact_text(text: str) -> str:
    """Mask anything that looks like a credential in free text."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + "********", text)
    return text


def current_request_id() -> str | None:
    if has_request_context():
        request_id = g.get("request_id")
        return None if request_id is None else str(request_id)
    return None


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line with time, level, logger, message and request id."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_text(record.getMessage()),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            payload["exception"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(payload, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger once (idempotent)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, "_aeohub", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler._aeohub = True  # type: ignore[attr-defined]
    handler.addFilter(RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            TextFormatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root.addHandler(handler)
    root.setLevel(level)
    # Alembic narrates every step at INFO; only its warnings matter to an operator.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    # APScheduler logs every job it adds and runs at INFO; the runs have their own records.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))


def init_app(app: Flask) -> None:
    """Give every request an id (taken from `X-Request-Id` when sane) and echo it back."""

    @app.before_request
    def _assign_request_id() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        if incoming and len(incoming) <= 64 and re.fullmatch(r"[A-Za-z0-9._-]+", incoming):
            g.request_id = incoming
        else:
            g.request_id = uuid.uuid4().hex

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        request_id = g.get("request_id")
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        return response
