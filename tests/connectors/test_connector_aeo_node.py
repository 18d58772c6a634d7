"""The aeo_node connector against a real scripted node on loopback."""

from __future__ import annotations

import email.utils
import itertools
import logging
import time
from collections.abc import Generator
from typing import Any

import pytest
import yaml

from connectors import transport
from connectors.aeo_node import AeoNodeConnector, protocol_document_text
from connectors.base import (
    AccessDenied,
    AuthenticationFailed,
    Batch,
    ConnectorContext,
    FormatError,
    SourceUnavailable,
)
from tests.connectors.nodeserver import TOKEN, Hold, NodeServer, RunningServer, json_response

OPS = "/aeo/v1/operators"


def connector(node: NodeServer, context: ConnectorContext, **extra: Any) -> AeoNodeConnector:
    config: dict[str, Any] = {
        "base_url": node.url, "token": TOKEN, "programme": "EU-AEO", "page_size": 10,
        "backoff_base": 0.01, "backoff_cap": 0.05,
    }
    config.update(extra)
    return AeoNodeConnector(config, context)


def read_all(conn: AeoNodeConnector, state: dict[str, Any] | None = None) -> list[Batch]:
    return list(conn.read(state))


def test_reads_the_whole_feed_in_pages(node: NodeServer, context: ConnectorContext) -> None:
    node.add_deletion(3)
    batches = read_all(connector(node, context))
    assert [len(b.records) for b in batches] == [10, 10, 5]
    assert [b.complete for b in batches] == [False, False, True]
    assert [b.state for b in batches] == [{"cursor": "c10"}, {"cursor": "c20"}, {"cursor": "c26"}]
    first = batches[0].records[0]
    assert first.trader_id == "DE100000"
    assert first.legal_name == "Müller Logistik 0 GmbH"
    assert (first.street, first.city, first.country) == ("0 Hafenstraße", "Hamburg", "DE")
    assert [c.code for c in first.categories] == ["AEOC", "AEOS"]
    assert first.identifiers[0].linked is True
    assert first.consent_share is True
    assert first.position == "page 1 item 1"
    assert len(first.fingerprint) == 32
    assert first.problems == ()
    deletion = batches[2].deletions[0]
    assert (deletion.trader_id, deletion.programme) == ("DE100003", "EU-AEO")
    assert all(h.query.get("programme") == "EU-AEO" for h in node.hits_to(OPS))


def test_fingerprint_is_stable_and_changes_with_the_record(
    node: NodeServer, context: ConnectorContext
) -> None:
    once = read_all(connector(node, context))[0].records
    again = read_all(connector(node, context))[0].records
    assert [r.fingerprint for r in once] == [r.fingerprint for r in again]
    assert len({r.fingerprint for r in once}) == len(once)


def test_resume_from_saved_state_has_no_gaps_or_duplicates(
    node: NodeServer, context: ConnectorContext
) -> None:
    conn = connector(node, context)
    feed = conn.read(None)
    assert isinstance(feed, Generator)  # a generator: the test closes it mid-feed
    first = next(feed)
    feed.close()  # the "crash": the hub had committed only the first batch
    rest = read_all(conn, first.state)
    ids = [r.trader_id for b in [first, *rest] for r in b.records]
    assert ids == [f"DE{100000 + i}" for i in range(25)]
    assert node.hits_to(OPS)[-1].query["since"] == "c20"


def test_caught_up_feed_returns_one_complete_batch(
    node: NodeServer, context: ConnectorContext
) -> None:
    batches = read_all(connector(node, context), {"cursor": "c25"})
    assert len(batches) == 1
    assert batches[0].complete and batches[0].records == ()
    node.add_records(2, start=25)
    batches = read_all(connector(node, context), batches[0].state)
    assert [r.trader_id for r in batches[0].records] == ["DE100025", "DE100026"]


def test_5xx_is_retried_with_backoff(node: NodeServer, context: ConnectorContext) -> None:
    node.script(OPS, ("status", 503), ("status", 502), ("status", 500))
    batches = read_all(connector(node, context, max_retries=3))
    assert sum(len(b.records) for b in batches) == 25
    assert len(node.hits_to(OPS)) == 3 + 3  # three failures, then three pages


def test_gives_up_after_max_retries(node: NodeServer, context: ConnectorContext) -> None:
    node.script(OPS, *[("status", 503)] * 5)
    with pytest.raises(SourceUnavailable, match=r"answered 503.*gave up after 3 attempts"):
        read_all(connector(node, context, max_retries=2))
    assert len(node.hits_to(OPS)) == 3


def test_truncated_json_body_is_retried(node: NodeServer, context: ConnectorContext) -> None:
    node.script(OPS, ("truncate",), ("truncate",))
    batches = read_all(connector(node, context))
    assert sum(len(b.records) for b in batches) == 25
    assert len(node.hits_to(OPS)) == 2 + 3


def test_timeout_is_retried(node: NodeServer, context: ConnectorContext) -> None:
    node.script(OPS, ("hold", Hold()))  # no answer: the client's 0.2 s timeout
    batches = read_all(connector(node, context, timeout=0.2))
    assert sum(len(b.records) for b in batches) == 25
    assert len(node.hits_to(OPS)) == 1 + 3


def test_a_page_sent_a_little_at_a_time_is_cut_off_and_retried(
    node: NodeServer, context: ConnectorContext
) -> None:
    """Each byte arrives within the timeout, but the whole page must arrive within six
    timeouts: a node dripping its answer cannot hold a sync for ever."""
    node.script(OPS, ("drip", 0.1))  # about 6 KB, 64 bytes every 0.1 s: some 10 s
    batches = read_all(connector(node, context, timeout=0.2))
    assert sum(len(b.records) for b in batches) == 25
    assert len(node.hits_to(OPS)) == 1 + 3  # the dripping page was cut off, then read again


def test_a_page_too_large_to_be_one_is_refused(
    node: NodeServer, context: ConnectorContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport, "MAX_DOCUMENT_BYTES", 4096)
    with pytest.raises(FormatError, match=r"/aeo/v1/operators answered more than 4,096 bytes"):
        read_all(connector(node, context))
    assert len(node.hits_to(OPS)) == 1  # not retried: the node would send it again


def test_connection_refused_is_retried_then_unavailable(context: ConnectorContext) -> None:
    conn = AeoNodeConnector(
        {"base_url": "http://127.0.0.1:9", "token": TOKEN, "max_retries": 2,
         "backoff_base": 0.01}, context,
    )
    with pytest.raises(SourceUnavailable, match=r"could not connect to 127\.0\.0\.1:9"):
        read_all(conn)


def test_429_retry_after_seconds_is_honoured(
    node: NodeServer, context: ConnectorContext
) -> None:
    node.script(OPS, ("retry_after", "1"))
    started = time.monotonic()
    batches = read_all(connector(node, context))
    elapsed = time.monotonic() - started
    assert sum(len(b.records) for b in batches) == 25
    hits = node.hits_to(OPS)
    assert hits[1].at - hits[0].at >= 0.95
    assert elapsed >= 0.95


def test_429_retry_after_http_date_is_honoured(
    node: NodeServer, context: ConnectorContext
) -> None:
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    node.script(OPS, ("retry_after", when))
    read_all(connector(node, context))
    hits = node.hits_to(OPS)
    assert hits[1].at - hits[0].at >= 0.9  # whole-second resolution: at least ~1 s


def test_429_longer_than_the_cap_gives_up(node: NodeServer, context: ConnectorContext) -> None:
    node.script(OPS, ("retry_after", "600"))
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match=r"asked to wait 600 s.*max_retry_after"):
        read_all(connector(node, context, max_retry_after=30))
    assert time.monotonic() - started < 5
    assert len(node.hits_to(OPS)) == 1


def test_rate_limit_spaces_requests(node: NodeServer, context: ConnectorContext) -> None:
    read_all(connector(node, context, rate_limit=10, page_size=5))
    hits = node.hits_to(OPS)
    assert len(hits) == 5
    gaps = [b.at - a.at for a, b in itertools.pairwise(hits)]
    assert min(gaps) >= 0.09
    assert hits[-1].at - hits[0].at >= 0.39


def test_wrong_token_is_authentication_failed(
    node: NodeServer, context: ConnectorContext
) -> None:
    conn = connector(node, context, token="not-the-token")
    with pytest.raises(AuthenticationFailed, match=r"answered 401: the bearer token was refused"):
        read_all(conn)
    assert len(node.hits_to(OPS)) == 1  # never retried


def test_cursor_that_does_not_advance_is_a_format_error(context: ConnectorContext) -> None:
    def stuck(environ: Any, start_response: Any) -> Any:
        body = {"records": [], "deletions": [], "next_cursor": "same", "complete": False}
        return json_response(body)(environ, start_response)

    running = RunningServer(stuck)
    try:
        conn = AeoNodeConnector({"base_url": running.url}, context)
        with pytest.raises(FormatError, match="cursor did not advance"):
            read_all(conn, {"cursor": "same"})
    finally:
        running.stop()


# -- check / discover ------------------------------------------------------------------


def test_check_ok(node: NodeServer, context: ConnectorContext) -> None:
    result = connector(node, context).check()
    assert result.ok, result.reason
    assert (result.reachable, result.authenticated, result.format_ok) == (True, True, True)
    assert result.details["programmes"] == ["EU-AEO"]


def test_check_wrong_token(node: NodeServer, context: ConnectorContext) -> None:
    result = connector(node, context, token="nope").check()
    assert (result.reachable, result.authenticated, result.ok) == (True, False, False)
    assert "401" in (result.reason or "")
    assert "check the token" in (result.reason or "")


def test_check_unreachable(context: ConnectorContext) -> None:
    conn = AeoNodeConnector({"base_url": "http://127.0.0.1:9", "backoff_base": 0.01}, context)
    result = conn.check()
    assert result.reachable is False
    assert "could not connect" in (result.reason or "")
    assert "base_url" in (result.reason or "")


def test_check_not_the_node_protocol(node: NodeServer, context: ConnectorContext) -> None:
    node.script("/aeo/v1/info", ("html",))
    result = connector(node, context).check()
    assert (result.reachable, result.format_ok) == (True, False)
    assert "does not speak the AEO node protocol" in (result.reason or "")
    node.protocol = "something-else/2"
    result = connector(node, context).check()
    assert result.format_ok is False
    assert "something-else/2" in (result.reason or "")


def test_check_not_found_is_not_the_protocol(context: ConnectorContext, node: NodeServer) -> None:
    result = connector(node, context, base_url=node.url + "/elsewhere").check()
    assert (result.reachable, result.format_ok) == (True, False)
    assert "404" in (result.reason or "")


def test_check_unknown_programme(node: NodeServer, context: ConnectorContext) -> None:
    result = connector(node, context, programme="US-CTPAT").check()
    assert result.format_ok is False
    assert "does not serve programme 'US-CTPAT'" in (result.reason or "")


def test_discover(node: NodeServer, context: ConnectorContext) -> None:
    found = connector(node, context).discover()
    assert found.incremental is True
    assert [(p.code, p.count) for p in found.programmes] == [("EU-AEO", 25)]
    assert connector(node, context, mode="snapshot").discover().incremental is False


# -- snapshot mode ----------------------------------------------------------------------


def test_snapshot_mode_reads_ndjson_with_trailer(
    node: NodeServer, context: ConnectorContext
) -> None:
    batches = read_all(connector(node, context, mode="snapshot"))
    assert [len(b.records) for b in batches] == [10, 10, 5]
    assert batches[-1].complete and not batches[0].complete
    assert batches[0].state == {"offset": 10}
    assert batches[-1].state == {"offset": None}
    assert batches[0].records[0].position == "line 1"


def test_snapshot_resume_skips_done_records(node: NodeServer, context: ConnectorContext) -> None:
    batches = read_all(connector(node, context, mode="snapshot"), {"offset": 20})
    assert [r.trader_id for b in batches for r in b.records] == [
        f"DE{100000 + i}" for i in range(20, 25)
    ]


def test_snapshot_without_trailer_is_truncated(
    node: NodeServer, context: ConnectorContext
) -> None:
    node.ndjson_trailer = False
    batches: list[Batch] = []
    with pytest.raises(FormatError, match="snapshot truncated"):
        for batch in connector(node, context, mode="snapshot").read(None):
            batches.append(batch)
    assert not any(b.complete for b in batches)


@pytest.mark.parametrize(("trailer", "problem"), [
    ({"complete": True}, "gives no count"),
    ({"complete": True, "count": True}, "gives no count"),
    ({"complete": True, "count": -1}, "gives no count"),
    ({"complete": True, "count": 24}, "says 24 records but 25 were sent"),
    ({"complete": False, "count": 25}, "not complete"),
])
def test_a_trailer_that_cannot_vouch_for_the_snapshot_fails_it(
    node: NodeServer, context: ConnectorContext, trailer: dict[str, Any], problem: str
) -> None:
    node.ndjson_trailer = trailer
    with pytest.raises(FormatError, match=problem):
        read_all(connector(node, context, mode="snapshot"))


# -- access and secrets ------------------------------------------------------------------


def test_disallowed_host_is_refused_before_any_request(node: NodeServer) -> None:
    ctx = ConnectorContext(allowed_hosts=frozenset({"aeo.customs.example"}))
    with pytest.raises(AccessDenied, match=r"127\.0\.0\.1"):
        read_all(connector(node, ctx))
    assert node.hits == []


def test_redirect_to_a_disallowed_host_is_refused(
    node: NodeServer, context: ConnectorContext
) -> None:
    target = node.url.replace("127.0.0.1", "localhost") + OPS
    node.script(OPS, ("redirect", target))
    with pytest.raises(AccessDenied, match=r"'localhost' is not among the hosts"):
        read_all(connector(node, context))
    assert len(node.hits) == 1  # the redirect target was never fetched


def test_redirect_within_allowed_hosts_is_followed(
    node: NodeServer, context: ConnectorContext
) -> None:
    node.script("/old/aeo/v1/info", ("redirect", node.url + "/aeo/v1/info"))
    found = connector(node, context, base_url=node.url + "/old").discover()
    assert found.programmes[0].code == "EU-AEO"
    assert node.hits[-1].authorization == f"Bearer {TOKEN}"


def test_token_never_leaks_into_repr_logs_or_errors(
    node: NodeServer, context: ConnectorContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    conn = connector(node, context, max_retries=1)
    assert TOKEN not in repr(conn)
    assert "********" in repr(conn)
    node.script(OPS, ("status", 503), ("status", 503))
    with pytest.raises(SourceUnavailable) as excinfo:
        read_all(conn)
    assert TOKEN not in str(excinfo.value)
    bad = connector(node, context, token=TOKEN + "x")
    with pytest.raises(AuthenticationFailed) as auth_exc:
        read_all(bad)
    assert TOKEN not in str(auth_exc.value)
    assert TOKEN not in (bad.check().reason or "")
    assert caplog.records  # retries were logged...
    assert TOKEN not in caplog.text  # ...without the token


def test_protocol_document_ships_with_the_package() -> None:
    doc = yaml.safe_load(protocol_document_text())
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["version"] == "1.0.0"
    record = doc["components"]["schemas"]["Record"]["properties"]
    for name in ("trader_id", "legal_name", "address", "categories", "identifiers",
                 "consent_share", "changed_at"):
        assert name in record
