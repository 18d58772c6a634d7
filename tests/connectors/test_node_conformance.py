"""The node conformance checker (connectors/aeo_node) against good and broken nodes."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from connectors.aeo_node.conformance import check_node, schema_errors
from hub.sync.node_cli import register
from tests.connectors.nodeserver import TOKEN, NodeServer, make_record


def test_a_conformant_node_passes(node: NodeServer) -> None:
    node.add_deletion(2)
    report = check_node(node.url, token=TOKEN, programme="EU-AEO", page_limit=7)
    assert report.breaches == []
    assert report.conformant
    assert report.facts["feed_pages"] == 4
    assert report.facts["snapshot_records"] == 25
    assert len(report.checks) == 6
    assert "Conformant" in report.render()


def test_missing_field_is_named(node: NodeServer) -> None:
    node.breakage.add("missing_field")
    report = check_node(node.url, token=TOKEN)
    assert "GET /aeo/v1/operators: record 3 lacks field 'trader_id'" in report.breaches
    assert not report.conformant


def test_limit_ignored(node: NodeServer) -> None:
    node.breakage.add("ignore_limit")
    report = check_node(node.url, token=TOKEN)
    assert "limit=5 returned 7 records" in report.breaches


def test_cursor_that_does_not_advance(node: NodeServer) -> None:
    node.breakage.add("stuck_cursor")
    report = check_node(node.url, token=TOKEN, page_limit=10)
    assert any("cursor did not advance" in b for b in report.breaches), report.breaches


def test_snapshot_without_trailer(node: NodeServer) -> None:
    node.ndjson_trailer = False
    report = check_node(node.url, token=TOKEN)
    assert "snapshot has no completeness trailer" in report.breaches


def test_node_without_auth(node: NodeServer) -> None:
    node.require_token = False
    report = check_node(node.url, token=TOKEN)
    assert (
        "GET /aeo/v1/info: unauthenticated request was answered 200, expected 401"
        in report.breaches
    )
    assert (
        "GET /aeo/v1/operators: request with a wrong token was answered 200, expected 401"
        in report.breaches
    )


def test_wrong_token_given_to_the_checker(node: NodeServer) -> None:
    report = check_node(node.url, token="wrong")
    assert report.breaches == [
        "GET /aeo/v1/info was answered 401 with the token given; check the token"
    ]


def test_unreachable_node() -> None:
    report = check_node("http://127.0.0.1:9", token=TOKEN, timeout=2)
    assert len(report.breaches) == 1
    assert "could not reach 127.0.0.1:9" in report.breaches[0]


def test_schema_errors_are_plain() -> None:
    record = make_record(1)
    record["status"] = "fine"
    record["address"] = {k: v for k, v in record["address"].items() if k != "country"}
    record["valid_from"] = "01/02/2020"
    record["consent_share"] = "yes"
    messages = schema_errors("Record", record, "record 1")
    assert "record 1 address lacks field 'country'" in messages
    assert "record 1 field 'status' is 'fine', expected one of 'valid', 'suspended', " \
           "'revoked', 'annulled', 'expired', 'withdrawn'" in messages
    assert "record 1 field 'valid_from' is '01/02/2020', not a valid date" in messages
    assert "record 1 field 'consent_share' is a string, expected boolean or null" in messages


def _cli() -> click.Group:
    group = click.Group("aeohub")
    register(group)
    return group


def test_cli_exit_status_and_json(node: NodeServer) -> None:
    runner = CliRunner()
    ok = runner.invoke(_cli(), ["node", "conformance", node.url, "--token", TOKEN])
    assert ok.exit_code == 0, ok.output
    assert "Conformant" in ok.output
    node.ndjson_trailer = False
    bad = runner.invoke(_cli(), ["node", "conformance", node.url, "--json"],
                        env={"AEOHUB_NODE_TOKEN": TOKEN})
    assert bad.exit_code == 1
    report = json.loads(bad.output)
    assert report["conformant"] is False
    assert report["breaches"] == ["snapshot has no completeness trailer"]


@pytest.mark.parametrize("path", ["/aeo/v1/info"])
def test_cli_text_lists_breaches(node: NodeServer, path: str) -> None:
    node.require_token = False
    result = CliRunner().invoke(_cli(), ["node", "conformance", node.url, "--token", TOKEN])
    assert result.exit_code == 1
    assert f"BREACH: GET {path}: unauthenticated request was answered 200" in result.output
