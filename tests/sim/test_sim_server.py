"""The node simulator over real HTTP on loopback: auth, paging, formats, faults, control."""

from __future__ import annotations

import csv
import io
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from hub.sim.server import NodeServer, encode_cursor

TOKEN = "t0ken"
NS = "{urn:aeohub:node:1}"


@pytest.fixture
def node() -> Iterator[NodeServer]:
    with NodeServer(["EU-AEO", "CN-AEO"], size=600, seed=13, token=TOKEN) as server:
        yield server


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        yield session


def _get(http: requests.Session, node: NodeServer, path: str, **params: Any) -> requests.Response:
    with http.get(node.url + path, params=params, timeout=30) as response:
        response.content  # noqa: B018 - read the body before the connection is released
        return response


def _pages(http: requests.Session, node: NodeServer, programme: str, limit: int,
           cursor: str | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    records: list[dict[str, Any]] = []
    deletions: list[dict[str, Any]] = []
    for _ in range(1000):
        params: dict[str, Any] = {"programme": programme, "limit": limit}
        if cursor:
            params["since"] = cursor
        page = _get(http, node, "/aeo/v1/operators", **params).json()
        records += page["records"]
        deletions += page["deletions"]
        cursor = page["next_cursor"]
        if page["complete"]:
            break
    assert cursor is not None
    return records, deletions, cursor


def test_auth_required(node: NodeServer) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        with requests.get(node.url + "/aeo/v1/info", headers=headers, timeout=10) as response:
            assert response.status_code == 401
            assert response.headers["Content-Type"] == "application/problem+json"
            assert response.json()["status"] == 401


def test_info(node: NodeServer, http: requests.Session) -> None:
    info = _get(http, node, "/aeo/v1/info").json()
    assert info["protocol"] == "aeo-node/1"
    assert {p["code"]: p["count"] for p in info["programmes"]} == {"EU-AEO": 600, "CN-AEO": 600}
    assert set(info["formats"]) == {"json", "ndjson", "csv", "xml"}


def test_paging_resumes_without_duplicates_or_gaps(node: NodeServer,
                                                   http: requests.Session) -> None:
    records, deletions, cursor = _pages(http, node, "EU-AEO", 97)
    ids = [r["trader_id"] for r in records]
    assert len(ids) == len(set(ids)) == 600 and not deletions
    assert ids == node.registry("EU-AEO").trader_ids()
    # Nothing new: an empty, complete page with a cursor that still works.
    page = _get(http, node, "/aeo/v1/operators", programme="EU-AEO", since=cursor).json()
    assert page["records"] == [] and page["complete"] is True
    # Changes after the cursor: exactly the changed operators, deletions included.
    registry = node.registry("EU-AEO")
    suspended = node.apply("suspend", ids[5], programme="EU-AEO")
    removed_id = next(r["trader_id"] for r in registry.iter_records() if r["status"] == "revoked")
    node.apply("remove", removed_id, programme="EU-AEO")
    changes = node.advance(5, programme="EU-AEO")
    more, gone, _ = _pages(http, node, "EU-AEO", 7, page["next_cursor"])
    expected = {c.trader_id for c in changes if c.kind != "remove"} | {suspended.trader_id}
    expected -= {c.trader_id for c in changes if c.kind == "remove"}
    assert {r["trader_id"] for r in more} == expected
    assert removed_id in {d["trader_id"] for d in gone}
    assert set(gone[0]) == {"trader_id_scheme", "trader_id", "authorisation_number",
                            "deleted_at"}


def test_bad_requests(node: NodeServer, http: requests.Session) -> None:
    assert _get(http, node, "/aeo/v1/operators").status_code == 400  # two programmes
    assert _get(http, node, "/aeo/v1/operators", programme="XX").status_code == 404
    bad = _get(http, node, "/aeo/v1/operators", programme="EU-AEO", since="garbage!")
    assert bad.status_code == 400 and bad.json()["title"] == "Invalid cursor"
    other = encode_cursor("CN-AEO", 3)
    assert _get(http, node, "/aeo/v1/operators", programme="EU-AEO", since=other).status_code == 400
    page = _get(http, node, "/aeo/v1/operators", programme="EU-AEO", limit=99999).json()
    assert len(page["records"]) == 600  # clamped to 5000, fewer exist


def test_formats_agree_with_json_pages(node: NodeServer, http: requests.Session) -> None:
    node.advance(20)
    records, _, _ = _pages(http, node, "CN-AEO", 250)
    lines = _get(http, node, "/aeo/v1/operators.ndjson", programme="CN-AEO").text.splitlines()
    assert json.loads(lines[-1]) == {"complete": True, "count": len(records)}
    assert [json.loads(line) for line in lines[:-1]] == records
    rows = list(csv.DictReader(io.StringIO(
        _get(http, node, "/aeo/v1/operators.csv", programme="CN-AEO").text)))
    assert [row["trader_id"] for row in rows] == [r["trader_id"] for r in records]
    first = records[0]
    assert rows[0]["status"] == first["status"] and rows[0]["city"] == first["address"]["city"]
    assert rows[0]["categories"] == "|".join(
        f"{c['code']}:{c['status']}:{c['since']}" for c in first["categories"])
    assert rows[0]["consent_share"] in ("true", "false")
    root = ET.fromstring(_get(http, node, "/aeo/v1/operators.xml", programme="CN-AEO").content)
    assert root.tag == NS + "registry" and root.get("count") == str(len(records))
    operators = root.findall(NS + "operator")
    assert [o.findtext(NS + "trader_id") for o in operators] == [r["trader_id"] for r in records]
    assert operators[0].findtext(f"{NS}address/{NS}city") == first["address"]["city"]
    assert [c.get("code") for c in operators[0].iter(NS + "category")] == [
        c["code"] for c in first["categories"]]


def test_control_endpoints(node: NodeServer, http: requests.Session) -> None:
    state = _get(http, node, "/sim/v1/state").json()
    assert state["programmes"]["EU-AEO"]["max_seq"] == 600
    with http.post(node.url + "/sim/v1/advance", json={"days": 3}, timeout=30) as response:
        assert response.status_code == 200 and response.json()["days"] == 3
    trader_id = node.registry("EU-AEO").trader_ids(1)[0]
    record = node.registry("EU-AEO").lookup(trader_id)
    assert record is not None
    component = record["categories"][0]["code"]
    with http.post(node.url + "/sim/v1/apply", timeout=30, json={
            "kind": "suspend", "trader_id": trader_id, "component": component}) as response:
        change = response.json()
    assert change["trader_id"] == trader_id and change["component"] == component
    with http.post(node.url + "/sim/v1/apply", timeout=30,
                   json={"kind": "suspend", "trader_id": "NOPE"}) as response:
        assert response.status_code == 404
    with http.post(node.url + "/sim/v1/apply", timeout=30,
                   json={"kind": "boom", "trader_id": trader_id}) as response:
        assert response.status_code == 400
    state = _get(http, node, "/sim/v1/state").json()
    assert state["programmes"]["EU-AEO"]["day"] == 3
    assert state["programmes"]["EU-AEO"]["max_seq"] > 600
    truth = _get(http, node, "/sim/v1/ground-truth", programme="EU-AEO").text.splitlines()
    assert len(truth) == node.registry("EU-AEO").published_count


def _set(http: requests.Session, node: NodeServer, **faults: Any) -> None:
    with http.post(node.url + "/sim/v1/faults", json={"clear": True, **faults},
                   timeout=10) as response:
        assert response.status_code == 200, response.text


def test_faults_errors_latency_rate_limit(node: NodeServer, http: requests.Session) -> None:
    _set(http, node, fail_next=2)
    assert [_get(http, node, "/aeo/v1/info").status_code for _ in range(3)] == [503, 503, 200]
    _set(http, node, error_rate=1.0)
    assert _get(http, node, "/aeo/v1/info").status_code in (500, 502, 503)
    _set(http, node, latency_ms=150)
    start = time.monotonic()
    _get(http, node, "/aeo/v1/info")
    assert time.monotonic() - start >= 0.15
    _set(http, node, rate_limit=2, retry_after=3)
    statuses = [_get(http, node, "/aeo/v1/info") for _ in range(4)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited and limited[0].headers["Retry-After"] == "3"
    with http.post(node.url + "/sim/v1/faults", json={"nonsense": 1}, timeout=10) as response:
        assert response.status_code == 400 and "unknown fault" in response.json()["detail"]
    with http.delete(node.url + "/sim/v1/faults", timeout=10) as response:
        assert response.json()["rate_limit"] == 0


def test_fault_truncated_bodies(node: NodeServer, http: requests.Session) -> None:
    node.set_faults(truncate=True)
    for path in ("/aeo/v1/operators.ndjson", "/aeo/v1/operators.csv", "/aeo/v1/operators.xml",
                 "/aeo/v1/operators"):
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            _get(http, node, path, programme="EU-AEO")
    node.clear_faults()


def test_fault_malformed_duplicates_empty(node: NodeServer, http: requests.Session) -> None:
    node.set_faults(malformed_rate=0.2, duplicate_ids=3)
    records, _, _ = _pages(http, node, "EU-AEO", 5000)
    statuses = {r["status"] for r in records}
    assert "probation" in statuses
    assert any(r["legal_name"] is None for r in records)
    assert any(r["authorised_on"] == "2024-13-45" for r in records)
    assert any(r["trader_id"].startswith("??") for r in records)
    ids = [r["trader_id"] for r in records]
    assert len(ids) - len(set(ids)) >= 3
    csv_text = _get(http, node, "/aeo/v1/operators.csv", programme="EU-AEO").text
    assert "probation" in csv_text and "2024-13-45" in csv_text
    assert b"probation" in _get(http, node, "/aeo/v1/operators.xml", programme="EU-AEO").content
    node.set_faults("malformed_rate=0,duplicate_ids=0,empty")
    page = _get(http, node, "/aeo/v1/operators", programme="EU-AEO").json()
    assert page["records"] == [] and page["complete"] is True
    lines = _get(http, node, "/aeo/v1/operators.ndjson", programme="EU-AEO").text.splitlines()
    assert lines == ['{"complete":true,"count":0}']
    node.clear_faults()
    records_again, _, _ = _pages(http, node, "EU-AEO", 5000)
    assert "probation" not in {r["status"] for r in records_again}


def test_fault_broken_protocol(node: NodeServer, http: requests.Session) -> None:
    node.set_faults(broken_protocol=True)
    with requests.get(node.url + "/aeo/v1/info", timeout=10) as response:
        assert response.status_code == 200  # no_auth
    page = _get(http, node, "/aeo/v1/operators", programme="EU-AEO", limit=10).json()
    assert "complete" not in page  # missing_fields
    assert "status" not in page["records"][0] and "changed_at" not in page["records"][0]
    assert len(page["records"]) == 600  # ignore_limit
    node.set_faults(broken_protocol="cursor_stuck")
    first = _get(http, node, "/aeo/v1/operators", programme="EU-AEO", limit=10).json()
    second = _get(http, node, "/aeo/v1/operators", programme="EU-AEO", limit=10,
                  since=first["next_cursor"]).json()
    assert second["next_cursor"] == first["next_cursor"] and second["records"] == first["records"]
    node.set_faults(broken_protocol=["no_trailer"])
    lines = _get(http, node, "/aeo/v1/operators.ndjson", programme="EU-AEO").text.splitlines()
    assert len(lines) == 600 and "complete" not in json.loads(lines[-1])
    node.clear_faults()


def test_faults_at_start_and_no_token() -> None:
    with NodeServer("KR-AEO", size=20, seed=2, token=None, faults="fail_next=1") as server, \
            requests.Session() as session:
        with session.get(server.url + "/aeo/v1/info", timeout=10) as response:
            assert response.status_code == 503
        with session.get(server.url + "/aeo/v1/operators", timeout=10) as response:
            assert len(response.json()["records"]) == 20


@pytest.mark.slow
def test_large_snapshot_pages_and_streams_whole() -> None:
    # Speed is the benchmarks' business; this checks a big node serves it all correctly.
    with NodeServer("US-CTPAT", size=10_000, seed=1) as server, requests.Session() as session:
        session.headers["Authorization"] = "Bearer sim-token"
        with session.get(server.url + "/aeo/v1/operators", timeout=30,
                         params={"limit": 5000}) as response:
            assert len(response.json()["records"]) == 5000
        with session.get(server.url + "/aeo/v1/operators.ndjson", timeout=60) as response:
            assert response.text.count("\n") == 10_001
