"""Cursors are signed and bound to the client and the query; bad cursors, dates and numbers
are 400 problems naming the parameter, on every list endpoint."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hub.db import get_db
from tests.auth.hubkit import bearer, make_client, make_operator, programmes

HUGE = 2**70


def _unsigned(data: dict[str, Any]) -> str:
    """A cursor as the hub's used to be: base64 JSON anyone could write."""
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.fixture
def hub(ref_app: Flask) -> tuple[FlaskClient, dict[str, str], dict[str, str]]:
    database = get_db(ref_app)
    with database.session_scope(write=True) as session:
        eu = programmes(session)["EU-AEO"]
        for unique in range(1, 4):
            make_operator(session, eu, unique, category="AEOF")
    first = bearer(database, make_client(database, None, "admin"))
    second = bearer(database, make_client(database, None, "admin"))
    return ref_app.test_client(), first, second


def _get(client: Any, url: str, headers: dict[str, str]) -> Any:
    response = client.get(url, headers=headers)
    assert response.status_code < 500, response.get_data(as_text=True)
    return response


def _refused(response: Any, parameter: str) -> None:
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert [e["field"] for e in response.get_json()["errors"]] == [parameter]


def _tampered(cursor: str) -> str:
    """The cursor with the first character of its signature changed. (Not the last: in
    base64 the last character of a 20-byte signature carries two unused bits, so "A" and
    "B" there can stand for the same signature.)"""
    payload, _dot, signature = cursor.rpartition(".")
    return f"{payload}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"


@pytest.mark.parametrize("path", ["/api/v1/operators?limit=1", "/api/v1/changes?limit=1"])
def test_a_cursor_continues_only_for_its_client_and_query(hub, path):
    client, first, second = hub
    page = _get(client, path, first).get_json()
    cursor = page["next_cursor"]
    assert cursor
    assert _get(client, f"{path}&cursor={cursor}", first).status_code == 200
    _refused(_get(client, f"{path}&cursor={cursor}", second), "cursor")  # another client
    _refused(_get(client, f"{path}&cursor={_tampered(cursor)}", first), "cursor")
    for forged in (_unsigned({"after": HUGE, "e": HUGE, "v": 0}),
                   _unsigned({"after": 1.5, "e": 0.5}), "%%%", "a.b.c", "x" * 3000):
        _refused(_get(client, f"{path}&cursor={forged}", first), "cursor")


def test_a_cursor_of_one_query_does_not_continue_another(hub):
    client, first, _second = hub
    cursor = _get(client, "/api/v1/operators?limit=1&programme=EU-AEO", first
                  ).get_json()["next_cursor"]
    assert _get(client, f"/api/v1/operators?limit=1&programme=EU-AEO&cursor={cursor}",
                first).status_code == 200
    _refused(_get(client, f"/api/v1/operators?limit=1&country=DE&cursor={cursor}", first),
             "cursor")
    _refused(_get(client, f"/api/v1/changes?cursor={cursor}", first), "cursor")


def test_cursors_survive_a_key_rotation(hub):
    client, first, _second = hub
    app = client.application
    operators = _get(client, "/api/v1/operators?limit=1", first).get_json()["next_cursor"]
    feed = _get(client, "/api/v1/changes?limit=1", first).get_json()["next_cursor"]
    old_key = app.config["SECRET_KEY"]
    app.config.update(SECRET_KEY="a-new-key-after-rotation-" + "x" * 20,
                      SECRET_KEY_FALLBACKS=[old_key])
    assert _get(client, f"/api/v1/operators?limit=1&cursor={operators}", first
                ).status_code == 200
    assert _get(client, f"/api/v1/changes?limit=1&cursor={feed}", first).status_code == 200
    app.config.update(SECRET_KEY_FALLBACKS=[])  # the old key dropped: refused
    _refused(_get(client, f"/api/v1/operators?limit=1&cursor={operators}", first), "cursor")


@pytest.mark.parametrize(("path", "parameter"), [
    ("/api/v1/operators?changed_since=0001-01-01T00:00:00%2B14:00", "changed_since"),
    ("/api/v1/operators?changed_since=9999-12-31T23:59:59-14:00", "changed_since"),
    ("/api/v1/operators?changed_since=2020-13-01T00:00:00Z", "changed_since"),
    (f"/api/v1/operators?limit={HUGE}", "limit"),
    ("/api/v1/operators?limit=2.5", "limit"),
    (f"/api/v1/changes?limit={HUGE}", "limit"),
    ("/api/v1/changes?limit=-1", "limit"),
    (f"/api/v1/admin/runs?before={HUGE}", "before"),
    (f"/api/v1/admin/runs?limit={HUGE}", "limit"),
    (f"/api/v1/admin/quarantine?after={HUGE}", "after"),
    ("/api/v1/admin/quarantine?after=1e3", "after"),
])
def test_out_of_range_dates_and_numbers_name_their_parameter(hub, path, parameter):
    client, first, _second = hub
    _refused(_get(client, path, first), parameter)


def test_an_out_of_range_known_at_is_refused_by_verify(hub):
    client, first, _second = hub
    response = client.post("/api/v1/verify", headers=first, json={
        "trader": {"scheme": "EORI", "value": "DE1"},
        "known_at": "0001-01-01T00:00:00+14:00"})
    _refused(response, "known_at")
