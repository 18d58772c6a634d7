"""Edges the contract test found: ids beyond a BIGINT, extra problem members, limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from marshmallow import ValidationError

from hub.api.openapi import build_spec
from hub.api.schemas import (
    TraderSchema,
    VerifyBatchRequestSchema,
    VerifyRequestSchema,
    load_batch,
    load_verify,
)
from hub.errors import flatten_messages
from tests.auth.hubkit import bearer, make_client

HUGE = 2**64 + 7


@pytest.mark.parametrize("path", [
    f"/api/v1/operators/{HUGE}", f"/api/v1/operators/{HUGE}/history",
    f"/api/v1/operators/{HUGE}/recognition", f"/api/v1/admin/connections/{HUGE}",
    f"/api/v1/admin/runs/{HUGE}", f"/api/v1/admin/quarantine/{HUGE}",
])
def test_ids_beyond_a_bigint_are_unknown_not_a_server_error(ref_app, committed_db, path):
    headers = bearer(committed_db, make_client(committed_db, None, "admin"))
    response = ref_app.test_client().get(path, headers=headers)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_client_rate_limit_is_bounded(ref_app, committed_db):
    headers = bearer(committed_db, make_client(committed_db, None, "admin"))
    response = ref_app.test_client().post("/api/v1/admin/clients", headers=headers, json={
        "name": "x", "programme": "EU-AEO", "scopes": ["verify"], "rate_limit": 2**70})
    assert response.status_code == 400
    assert {e["field"] for e in response.json["errors"]} == {"rate_limit"}


def test_spec_documents_every_admin_route_and_open_problem_members():
    spec = build_spec()
    assert spec["components"]["schemas"]["Problem"]["additionalProperties"] is True
    paths = spec["paths"]
    for path in ("/api/v1/admin/connections", "/api/v1/admin/connections/{connection_id}",
                 "/api/v1/admin/connections/{connection_id}/sync", "/api/v1/admin/runs",
                 "/api/v1/admin/runs/{run_id}/confirm", "/api/v1/admin/runs/{run_id}/discard",
                 "/api/v1/admin/quarantine/{record_id}/replay",
                 "/api/v1/admin/quarantine/{record_id}/dismiss"):
        assert path in paths
        for operation in paths[path].values():
            assert operation["security"] == [{"oauth2": ["node:admin"]}]
    assert "202" in paths["/api/v1/admin/connections/{connection_id}/sync"]["post"][
        "responses"]


@pytest.mark.parametrize("traders", [
    [{"scheme": "EORI", "value": "DE1"}],
    [{"scheme": "EORI", "value": "DE1"}, {"name": "Muster GmbH",
                                          "address": {"country": "DE"}}],
    [{"scheme": "EORI"}, {"zz": 1}, 5, {"scheme": "", "value": "x"},
     {"scheme": "E" * 33, "value": "x"}, {"scheme": "EORI", "value": 12},
     {"scheme": "EORI", "value": "x" * 65}, {"scheme": "EORI", "value": "DE2"}],
])
def test_fast_batch_loading_equals_the_schema_item_by_item(traders):
    loaded = load_batch({"traders": traders, "date": "2026-03-01"})
    for position, item in enumerate(traders):
        expected = _loaded(TraderSchema().load, item)
        if loaded["traders"][position] is None:
            assert loaded["item_errors"][position] == flatten_messages(
                expected, f"traders.{position}")
        else:
            assert loaded["traders"][position] == expected
            assert position not in loaded["item_errors"]


@pytest.mark.parametrize("traders", [
    [], "not a list", None, {"scheme": "EORI", "value": "DE1"},
    [{"scheme": "EORI", "value": "DE1"}] * 10_001,
])
def test_a_wrong_batch_envelope_is_refused_as_the_schema_refuses_it(traders):
    body = {"traders": traders, "date": "2026-03-01"}
    assert _loaded(load_batch, body) == _loaded(VerifyBatchRequestSchema().load, body)


def _loaded(load: Callable[[dict[str, Any]], Any], body: dict[str, Any]) -> Any:
    """What `load` makes of `body`: the result, or the validation messages."""
    try:
        return load(body)
    except ValidationError as exc:
        return exc.messages


@pytest.mark.parametrize("body", [
    {"trader": {"scheme": "EORI", "value": "DE123456789012345"}},
    {"trader": {"scheme": "EORI", "value": "DE123456789012345"}, "date": "2026-03-01"},
    {"trader": {"scheme": "EORI", "value": "DE1"}, "date": None, "flow": "export"},
    {"trader": {"scheme": "EORI", "value": "DE1"}, "flow": "transit"},
    {"trader": {"scheme": "EORI", "value": "DE1"}, "flow": None},
    {"trader": {"scheme": "EORI", "value": "DE1"}, "date": "2026-02-30"},
    {"trader": {"scheme": "EORI", "value": "DE1"}, "date": "20260301"},
    {"trader": {"scheme": "EORI", "value": "DE1"}, "date": "2026-03-01T00:00:00"},
    {"trader": {"scheme": "EORI", "value": "DE1"}, "date": 20260301},
    {"trader": {"scheme": "", "value": "DE1"}},
    {"trader": {"scheme": "EORI", "value": "x" * 65}},
    {"trader": {"scheme": "EORI", "value": 5}},
    {"trader": {"scheme": "EORI"}},
    {"trader": {"scheme": "EORI", "value": "DE1", "name": "Ruiz Química S.L."}},
    {"trader": {"scheme": "EORI", "value": "DE1"}, "programme": "EU-AEO"},
    {"trader": {"scheme": "EORI", "value": "DE1"}, "known_at": "2026-03-01T00:00:00Z"},
    {"trader": {"scheme": "EORI", "value": "DE1"}, "unexpected": 1},
    {"trader": {"name": "Ruiz Química S.L.", "address": {"country": "ES"}}},
    {"trader": "DE1"},
    {},
    [],
])
def test_fast_verify_loading_equals_the_schema(body):
    assert _loaded(load_verify, body) == _loaded(VerifyRequestSchema().load, body)
