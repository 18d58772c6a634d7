"""Structured logs: one JSON object per line with the request id; secrets masked."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from flask import request

from hub import logs


@pytest.fixture
def json_logs(capsys) -> Iterator[None]:
    """JSON logs on stderr as production configures them (handler made inside the test,
    where stderr is capsys's)."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


def _start_json_logs(capsys) -> None:
    logs.configure_logging("INFO", "json")
    capsys.readouterr()


def _lines(capsys) -> list[dict[str, str]]:
    err = capsys.readouterr().err
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def test_a_request_logs_one_json_line_with_its_request_id(client, json_logs, capsys):
    _start_json_logs(capsys)
    response = client.get("/api/v1/audit/head", headers={"X-Request-Id": "req-42.a"})
    assert response.status_code == 200
    assert response.headers["X-Request-Id"] == "req-42.a"
    access = [line for line in _lines(capsys) if line["logger"] == "hub.access"]
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == "req-42.a" and line["level"] == "INFO"
    assert line["message"].startswith("GET /api/v1/audit/head 200 ")
    assert {"time", "level", "logger", "message", "request_id"} <= set(line)


def test_generated_request_id_is_logged_and_returned(client, json_logs, capsys):
    _start_json_logs(capsys)
    response = client.get("/api/v1/audit/head")
    generated = response.headers["X-Request-Id"]
    assert len(generated) == 32
    assert [line["request_id"] for line in _lines(capsys)
            if line["logger"] == "hub.access"] == [generated]


def test_probes_are_not_logged_at_info(client, json_logs, capsys):
    _start_json_logs(capsys)
    client.get("/healthz")
    client.get("/metrics")
    assert [line for line in _lines(capsys) if line["logger"] == "hub.access"] == []


def test_bearer_tokens_and_client_secrets_are_masked(app, client, json_logs, capsys):
    _start_json_logs(capsys)
    @app.post("/api/v1/_echo")
    def _echo() -> dict[str, bool]:
        logging.getLogger("hub.test").warning(
            "token request with %s and body %s", request.headers["Authorization"],
            request.get_data(as_text=True))
        return {"ok": True}

    client.post("/api/v1/_echo", headers={"Authorization": "Bearer eyJhbGciOi.abc.def",
                                          "X-Request-Id": "r1"},
                data="grant_type=client_credentials&client_secret=s3cr3t-VALUE&scope=verify")
    lines = [line for line in _lines(capsys) if line["logger"] == "hub.test"]
    assert len(lines) == 1
    message = lines[0]["message"]
    assert lines[0]["request_id"] == "r1"
    assert "eyJhbGciOi" not in message and "s3cr3t-VALUE" not in message
    assert "Bearer ********" in message and "client_secret=********" in message
    assert "grant_type=client_credentials" in message
