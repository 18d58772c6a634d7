"""Connectors and the conformance checker against the simulated node (hub/sim).

Both sides were built from the same agreement (connectors/aeo_node/node-protocol.yaml):
the simulator must pass the conformance check, each of its deliberate protocol breaches
must be reported plainly, and every built-in connector must read the same records from
its JSON feed, NDJSON, CSV and XML snapshots.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.aeo_node import AeoNodeConnector
from connectors.aeo_node.conformance import check_node
from connectors.base import FormatError
from connectors.csv_snapshot import CsvSnapshotConnector
from connectors.xml_snapshot import XmlSnapshotConnector

sim_server = pytest.importorskip("hub.sim.server")
SIM_TOKEN = sim_server.DEFAULT_TOKEN


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    with sim_server.NodeServer(["EU-AEO"], size=120, seed=5) as node:
        yield node


@pytest.fixture
def clean_sim(sim: Any) -> Iterator[Any]:
    sim.clear_faults()
    yield sim
    sim.clear_faults()


def test_the_simulator_is_conformant(clean_sim: Any) -> None:
    report = check_node(clean_sim.url, token=SIM_TOKEN, programme="EU-AEO", page_limit=25)
    assert report.breaches == [], report.render()
    assert report.facts["snapshot_records"] == 120


@pytest.mark.parametrize(("breach", "expected"), [
    ("missing_fields", "GET /aeo/v1/operators: record 1 lacks fields 'trader_id_scheme', "
                       "'status', 'changed_at'"),
    ("missing_fields", "GET /aeo/v1/operators: the page lacks field 'complete'"),
    ("cursor_stuck", "cursor did not advance"),
    ("no_trailer", "snapshot has no completeness trailer"),
    ("ignore_limit", "limit=5 returned 120 records"),
    ("no_auth", "GET /aeo/v1/operators: unauthenticated request was answered 200, expected 401"),
])
def test_broken_simulator_fails_with_the_right_message(
    clean_sim: Any, breach: str, expected: str
) -> None:
    clean_sim.set_faults(broken_protocol=breach)
    report = check_node(clean_sim.url, token=SIM_TOKEN, programme="EU-AEO", page_limit=25)
    assert not report.conformant
    assert any(expected in b for b in report.breaches), report.breaches


def _records(conn: Any) -> list[Any]:
    return [r for batch in conn.read(None) for r in batch.records]


def _key(record: Any) -> tuple[Any, ...]:
    return (record.programme, record.trader_id, record.legal_name, record.status,
            record.categories, record.identifiers, record.consent_share, record.valid_until)


def test_all_connectors_read_the_same_registry(clean_sim: Any) -> None:
    base = {"token": SIM_TOKEN}
    feed = _records(AeoNodeConnector(
        {**base, "base_url": clean_sim.url, "programme": "EU-AEO", "page_size": 50}))
    ndjson = _records(AeoNodeConnector(
        {**base, "base_url": clean_sim.url, "programme": "EU-AEO", "mode": "snapshot"}))
    csv_recs = _records(CsvSnapshotConnector(
        {**base, "url": clean_sim.url + "/aeo/v1/operators.csv?programme=EU-AEO"}))
    xml_recs = _records(XmlSnapshotConnector(
        {**base, "url": clean_sim.url + "/aeo/v1/operators.xml?programme=EU-AEO"}))
    assert len(feed) == 120
    assert not any(r.problems for r in feed + ndjson + csv_recs + xml_recs)
    expected = sorted(map(_key, feed), key=repr)
    for other in (ndjson, csv_recs, xml_recs):
        assert sorted(map(_key, other), key=repr) == expected


def test_retries_through_simulated_failures(clean_sim: Any) -> None:
    clean_sim.set_faults(fail_next=2)
    conn = AeoNodeConnector({"base_url": clean_sim.url, "token": SIM_TOKEN,
                             "programme": "EU-AEO", "backoff_base": 0.01})
    assert len(_records(conn)) == 120


def test_truncated_simulated_snapshot_is_refused(clean_sim: Any) -> None:
    clean_sim.set_faults(truncate=True)
    conn = AeoNodeConnector({"base_url": clean_sim.url, "token": SIM_TOKEN,
                             "programme": "EU-AEO", "mode": "snapshot", "max_retries": 0})
    with pytest.raises(FormatError, match="snapshot truncated"):
        _records(conn)
