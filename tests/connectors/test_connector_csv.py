"""The csv_snapshot connector: encodings, mapping, dates, malformed rows, resume, access."""

from __future__ import annotations

import csv
import gc
import logging
import tracemalloc
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from connectors.base import (
    AccessDenied,
    AuthenticationFailed,
    Batch,
    ConfigError,
    ConnectorContext,
    DeferredRecords,
    FormatError,
)
from connectors.csv_snapshot import CsvSnapshotConnector
from connectors.formats import DateParser
from tests.connectors.nodeserver import TOKEN, NodeServer, csv_text, make_record


def write(context: ConnectorContext, name: str, data: str | bytes) -> Path:
    assert context.import_dir is not None
    path = context.import_dir / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def read(conn: CsvSnapshotConnector, state: dict[str, Any] | None = None) -> list[Batch]:
    return list(conn.read(state))


def records(batches: list[Batch]) -> list[Any]:
    return [r for b in batches for r in b.records]


def csv_connector(context: ConnectorContext, path: Path, **extra: Any) -> CsvSnapshotConnector:
    return CsvSnapshotConnector({"path": str(path), **extra}, context)


def test_reads_the_simulator_csv_with_the_default_mapping(context: ConnectorContext) -> None:
    path = write(context, "eu.csv", csv_text([make_record(i) for i in range(5)]))
    batches = read(csv_connector(context, path, batch_size=2))
    assert [len(b.records) for b in batches] == [2, 2, 1]
    assert [b.state for b in batches] == [{"offset": 2}, {"offset": 4}, {"offset": None}]
    assert [b.complete for b in batches] == [False, False, True]
    first = batches[0].records[0]
    assert (first.programme, first.trader_id_scheme, first.trader_id) == ("EU-AEO", "EORI",
                                                                          "DE100000")
    assert first.legal_name == "Müller Logistik 0 GmbH"
    assert first.region is None and first.valid_until is None
    assert [(c.code, c.status, c.since) for c in first.categories] == [
        ("AEOC", "valid", "2019-03-01"), ("AEOS", "suspended", "2019-03-01"),
    ]
    assert [(i.scheme, i.value, i.linked) for i in first.identifiers] == [
        ("MID", "DEMULLOG0HAM", True)
    ]
    assert (first.consent_share, first.consent_publish) == (True, True)
    assert first.position == "line 2"
    assert first.problems == ()
    assert len(first.fingerprint) == 32
    fps = {r.fingerprint for r in records(batches)}
    assert len(fps) == 5


def test_utf8_with_bom(context: ConnectorContext) -> None:
    text = csv_text([make_record(1)])
    path = write(context, "bom.csv", b"\xef\xbb\xbf" + text.encode("utf-8"))
    [rec] = records(read(csv_connector(context, path)))
    assert rec.programme == "EU-AEO"  # the BOM did not stick to the first column name
    assert rec.legal_name == "Müller Logistik 1 GmbH"


def test_latin1(context: ConnectorContext) -> None:
    text = csv_text([make_record(1)])
    path = write(context, "latin.csv", text.encode("latin-1"))
    [rec] = records(read(csv_connector(context, path, encoding="latin-1")))
    assert rec.legal_name == "Müller Logistik 1 GmbH"
    assert rec.problems == ()


def test_latin1_read_as_utf8_is_carried_with_a_problem(context: ConnectorContext) -> None:
    text = csv_text([make_record(1), make_record(2)])
    path = write(context, "latin.csv", text.encode("latin-1"))
    recs = records(read(csv_connector(context, path)))
    assert len(recs) == 2
    assert "bytes that are not valid utf-8" in recs[0].problems[0]
    assert recs[0].legal_name == "M\ufffdller Logistik 1 GmbH"


def test_delimiter(context: ConnectorContext) -> None:
    path = write(context, "semi.csv", csv_text([make_record(3)], delimiter=";"))
    [rec] = records(read(csv_connector(context, path, delimiter=";")))
    assert rec.trader_id == "DE100003"


def test_column_mapping_and_date_formats(context: ConnectorContext) -> None:
    data = (
        "EORI;Name;Status;Authorised;Valid until;Country\n"
        "FR53740792600014;Société Générale Fret;valid;01/02/2020;31.12.2026;FR\n"
        "IE2025292W;Eireann Freight;suspended;13/13/2020;;IE\n"
    )
    path = write(context, "fr.csv", data)
    conn = csv_connector(
        context, path, delimiter=";", programme="EU-AEO", trader_id_scheme="EORI",
        columns={"trader_id": "EORI", "legal_name": "Name", "status": "Status",
                 "authorised_on": "Authorised", "valid_until": "Valid until",
                 "country": "Country"},
        date_formats=["%d/%m/%Y", "%d.%m.%Y"],
    )
    first, second = records(read(conn))
    assert (first.programme, first.trader_id_scheme, first.trader_id) == (
        "EU-AEO", "EORI", "FR53740792600014")
    assert (first.authorised_on, first.valid_until) == ("2020-02-01", "2026-12-31")
    assert first.problems == ()
    assert second.authorised_on == "13/13/2020"  # kept as read...
    assert second.problems == (  # ...and flagged, so the hub quarantines the row
        "line 3: authorised_on '13/13/2020' matches none of the date formats "
        "%d/%m/%Y, %d.%m.%Y",
    )


def test_malformed_rows_are_carried_not_dropped(context: ConnectorContext) -> None:
    good = csv_text([make_record(i) for i in range(3)]).splitlines()
    short = ",".join(good[2].split(",")[:18])
    lines = [good[0], good[1], short, "", good[3]]
    path = write(context, "bad.csv", "\n".join(lines) + "\n")
    recs = records(read(csv_connector(context, path)))
    assert len(recs) == 3
    assert recs[0].problems == ()
    assert recs[1].problems[0] == "line 3: 18 columns, expected 21"
    assert recs[1].trader_id == "DE100001"  # still attributable to its operator
    assert recs[2].position == "line 5"
    assert recs[2].problems == ()


def test_missing_required_columns_name_them(context: ConnectorContext) -> None:
    path = write(context, "cols.csv", "programme,trader_id_scheme,trader_id\nEU-AEO,EORI,DE1\n")
    with pytest.raises(FormatError, match=r"lacks required column\(s\) legal_name, status"):
        read(csv_connector(context, path))
    result = csv_connector(context, path).check()
    assert result.format_ok is False and "legal_name" in (result.reason or "")


def test_explicit_mapping_to_a_missing_column_is_named(context: ConnectorContext) -> None:
    path = write(context, "eu.csv", csv_text([make_record(1)]))
    with pytest.raises(FormatError, match=r"Firmenname \(for legal_name\)"):
        read(csv_connector(context, path, columns={"legal_name": "Firmenname"}))


def test_empty_file_is_a_format_error(context: ConnectorContext) -> None:
    path = write(context, "empty.csv", "")
    with pytest.raises(FormatError, match="no header row"):
        read(csv_connector(context, path))


def test_resume_from_offset(context: ConnectorContext) -> None:
    path = write(context, "eu.csv", csv_text([make_record(i) for i in range(7)]))
    conn = csv_connector(context, path, batch_size=3)
    feed = conn.read(None)
    assert isinstance(feed, Generator)
    first = next(feed)
    feed.close()
    rest = read(conn, first.state)
    ids = [r.trader_id for b in [first, *rest] for r in b.records]
    assert ids == [f"DE{100000 + i}" for i in range(7)]


def test_header_only_file_is_an_empty_complete_snapshot(context: ConnectorContext) -> None:
    path = write(context, "none.csv", csv_text([]))
    batches = read(csv_connector(context, path))
    assert len(batches) == 1 and batches[0].complete and batches[0].records == ()


def test_check_and_discover(context: ConnectorContext) -> None:
    path = write(context, "eu.csv", csv_text([make_record(1)]))
    conn = csv_connector(context, path, programme="EU-AEO")
    result = conn.check()
    assert result.ok and result.details["has_rows"] is True
    found = conn.discover()
    assert found.incremental is False and found.programmes[0].code == "EU-AEO"


# -- config --------------------------------------------------------------------------


def test_exactly_one_of_path_and_url(context: ConnectorContext) -> None:
    with pytest.raises(ConfigError) as excinfo:
        CsvSnapshotConnector({"programme": "EU-AEO"}, context)
    assert set(excinfo.value.fields) == {"path", "url"}
    with pytest.raises(ConfigError) as excinfo:
        CsvSnapshotConnector({"path": "a.csv", "url": "http://127.0.0.1/a.csv"}, context)
    assert "exactly one" in excinfo.value.fields["url"][0]


def test_config_errors_name_the_field(context: ConnectorContext) -> None:
    with pytest.raises(ConfigError) as excinfo:
        CsvSnapshotConnector(
            {"path": "a.csv", "delimiter": ";;", "encoding": "klingon-8",
             "columns": {"nonsense": "X"}, "batch_size": 0}, context,
        )
    fields = excinfo.value.fields
    assert set(fields) >= {"delimiter", "encoding", "batch_size"}
    assert any(name.startswith("columns") for name in fields)
    assert "Unknown encoding 'klingon-8'." in fields["encoding"]


# -- access ---------------------------------------------------------------------------


def test_path_outside_the_import_dir_is_refused(
    context: ConnectorContext, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text(csv_text([make_record(1)]))
    with pytest.raises(AccessDenied, match="outside the import directory"):
        read(csv_connector(context, outside))
    assert context.import_dir is not None
    sneaky = context.import_dir / ".." / "outside.csv"
    with pytest.raises(AccessDenied):
        read(csv_connector(context, sneaky))
    assert csv_connector(context, outside).check().reachable is False


def test_symlink_escape_is_refused(context: ConnectorContext, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text(csv_text([make_record(1)]))
    assert context.import_dir is not None
    link = context.import_dir / "link.csv"
    link.symlink_to(secret)
    with pytest.raises(AccessDenied, match="outside the import directory"):
        read(csv_connector(context, link))


def test_symlink_inside_the_import_dir_is_fine(context: ConnectorContext) -> None:
    real = write(context, "real.csv", csv_text([make_record(1)]))
    assert context.import_dir is not None
    link = context.import_dir / "link.csv"
    link.symlink_to(real)
    assert len(records(read(csv_connector(context, link)))) == 1


# -- over HTTP ------------------------------------------------------------------------


def test_reads_from_url_with_token(node: NodeServer, context: ConnectorContext) -> None:
    node.files["eu.csv"] = (csv_text([make_record(i) for i in range(4)]).encode(), "text/csv")
    conn = CsvSnapshotConnector({"url": node.url + "/files/eu.csv", "token": TOKEN}, context)
    assert len(records(read(conn))) == 4
    assert node.hits[-1].authorization == f"Bearer {TOKEN}"
    assert TOKEN not in repr(conn)


def test_url_wrong_token(node: NodeServer, context: ConnectorContext) -> None:
    node.files["eu.csv"] = (csv_text([make_record(1)]).encode(), "text/csv")
    conn = CsvSnapshotConnector({"url": node.url + "/files/eu.csv", "token": "bad"}, context)
    with pytest.raises(AuthenticationFailed):
        read(conn)
    assert conn.check().authenticated is False


def test_url_5xx_retried(node: NodeServer, context: ConnectorContext) -> None:
    node.require_token = False
    node.files["eu.csv"] = (csv_text([make_record(1)]).encode(), "text/csv")
    node.script("/files/eu.csv", ("status", 503))
    conn = CsvSnapshotConnector(
        {"url": node.url + "/files/eu.csv", "backoff_base": 0.01}, context
    )
    assert len(records(read(conn))) == 1
    assert len(node.hits_to("/files/eu.csv")) == 2


def test_url_redirect_to_disallowed_host(node: NodeServer, context: ConnectorContext) -> None:
    node.script("/files/eu.csv", ("redirect", "http://files.elsewhere.example/eu.csv"))
    conn = CsvSnapshotConnector({"url": node.url + "/files/eu.csv"}, context)
    with pytest.raises(AccessDenied, match=r"files\.elsewhere\.example"):
        read(conn)


def _peak_memory_of_read(context: ConnectorContext, rows: int) -> int:
    path = write(context, f"big{rows}.csv", csv_text([make_record(i) for i in range(rows)]))
    conn = csv_connector(context, path, batch_size=100)
    gc.collect()
    tracemalloc.start()
    try:
        count = 0
        for batch in conn.read(None):
            count += len(batch.records)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == rows
    return peak


def test_streams_in_bounded_memory(context: ConnectorContext) -> None:
    # Reading four times the rows must not need (anywhere near) four times the memory:
    # a streamed read holds one batch at a time. (tests/benchmarks has the 1M-row run.)
    small = _peak_memory_of_read(context, 1000)
    large = _peak_memory_of_read(context, 4000)
    assert large < small * 1.5, (small, large)


def test_logs_do_not_carry_secrets(
    node: NodeServer, context: ConnectorContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    node.files["eu.csv"] = (csv_text([make_record(1)]).encode(), "text/csv")
    node.script("/files/eu.csv", ("status", 500))
    conn = CsvSnapshotConnector(
        {"url": node.url + "/files/eu.csv", "token": TOKEN, "backoff_base": 0.01,
         "headers": {"X-Api-Key": "k3y-s3cret"}}, context,
    )
    read(conn)
    assert "k3y-s3cret" not in repr(conn) and TOKEN not in repr(conn)
    assert TOKEN not in caplog.text and "k3y-s3cret" not in caplog.text


def test_records_are_parsed_on_demand_as_the_full_parse_would(
        context: ConnectorContext) -> None:
    """The batch knows each record's fingerprint and programme before parsing it, and its
    straight parse of a usual row equals the general `_record` parse."""
    path = write(context, "eu.csv", csv_text([make_record(i) for i in range(6)]))
    conn = csv_connector(context, path, programme="EU-AEO")
    [batch] = read(conn)
    assert isinstance(batch.records, DeferredRecords)
    parsed = list(batch.records)
    assert list(batch.records.fingerprints) == [r.fingerprint for r in parsed]
    assert list(batch.records.programmes) == [r.programme for r in parsed]
    assert batch.records[2] == parsed[2] and batch.records[1:3] == tuple(parsed[1:3])
    rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    header, data = rows[0], rows[1:]
    columns = conn._columns(header)
    for line, (row, record) in enumerate(zip(data, parsed, strict=True), start=2):
        full = conn._record(row, line, columns, len(header), DateParser(["%Y-%m-%d"]))
        assert full == record


def test_a_row_read_under_another_header_or_setting_has_another_fingerprint(
        context: ConnectorContext) -> None:
    """An unchanged row is recognised by its fingerprint, so the fingerprint covers how the
    row is parsed: the same cells under swapped columns, or with another date format, are
    not the same record."""
    rows = [make_record(i) for i in range(2)]
    text = csv_text(rows)
    header, *lines = text.splitlines()
    swapped = header.replace("city", "CITY_").replace("street", "city").replace("CITY_",
                                                                                "street")
    first = write(context, "a.csv", text)
    second = write(context, "b.csv", "\n".join([swapped, *lines]) + "\n")
    plain = [r.fingerprint for r in records(read(csv_connector(context, first)))]
    again = [r.fingerprint for r in records(read(csv_connector(context, first)))]
    other_header = [r.fingerprint for r in records(read(csv_connector(context, second)))]
    other_dates = [r.fingerprint for r in records(read(csv_connector(
        context, first, date_formats=["%d.%m.%Y", "%Y-%m-%d"])))]
    assert plain == again
    assert not set(plain) & set(other_header)
    assert not set(plain) & set(other_dates)
