"""Edge cases of the connectors found by exploratory testing: stale workbook dimensions,
chart sheets, malformed XML paths, deeply nested XML, unattributable tombstones, cursors
going round in a cycle, and the host policy of `aeohub connectors check`."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference

from connectors.aeo_node import AeoNodeConnector
from connectors.base import Batch, ConfigError, ConnectorContext, FormatError
from connectors.xlsx_snapshot import XlsxSnapshotConnector
from connectors.xml_snapshot import MAX_RECORD_DEPTH, XmlSnapshotConnector
from tests.connectors.nodeserver import TOKEN, NodeServer, RunningServer, json_response, make_record
from tests.connectors.nodeserver import xml_text as node_xml

# -- xlsx_snapshot ---------------------------------------------------------------------

REGISTER = ("EORI", "Name", "Status")


def register_rows(n: int) -> list[tuple[str, str, str]]:
    return [(f"DE{100000 + i}", f"Firma {i} GmbH", "valid") for i in range(n)]


def xlsx_config(**extra: Any) -> dict[str, Any]:
    return {"path": "register.xlsx", "programme": "EU-AEO", "trader_id_scheme": "EORI",
            "columns": {"trader_id": "EORI", "legal_name": "Name", "status": "Status"},
            **extra}


def set_dimension(path: Path, sheet_xml: str, ref: str) -> None:
    """Rewrite the <dimension> a worksheet records (its used range) to ``ref``."""
    with zipfile.ZipFile(path) as source:
        entries = [(info, source.read(info.filename)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info, data in entries:
            if info.filename != sheet_xml:
                target.writestr(info, data)
                continue
            text, count = re.subn(r'<dimension ref="[^"]*"\s*/>', f'<dimension ref="{ref}"/>',
                                  data.decode())
            assert count == 1
            target.writestr(info, text.encode())


def test_rows_beyond_a_stale_dimension_are_read(context: ConnectorContext) -> None:
    assert context.import_dir is not None
    path = context.import_dir / "register.xlsx"
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(REGISTER)
    for row in register_rows(300):
        sheet.append(row)
    workbook.save(path)
    # the writer recorded 280 data rows: Excel ignores that, and so do we
    set_dimension(path, "xl/worksheets/sheet1.xml", "A1:C281")
    conn = XlsxSnapshotConnector(xlsx_config(), context)
    found = [r for b in conn.read(None) for r in b.records]
    assert len(found) == 300
    assert found[-1].trader_id == "DE100299"
    assert found[-1].position == "row 301"
    assert {r.status for r in found} == {"valid"}


def chart_workbook(path: Path) -> None:
    """A chart sheet first, then the worksheet "Register"."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Register"
    sheet.append((*REGISTER, "Staff"))
    for i, row in enumerate(register_rows(3)):
        sheet.append((*row, i + 10))
    chart = BarChart()
    chart.add_data(Reference(sheet, min_col=4, min_row=1, max_row=4), titles_from_data=True)
    workbook.create_chartsheet("Staff chart", 0).add_chart(chart)
    workbook.save(path)


def test_a_chart_sheet_is_refused_by_name(context: ConnectorContext) -> None:
    assert context.import_dir is not None
    chart_workbook(context.import_dir / "register.xlsx")
    conn = XlsxSnapshotConnector(xlsx_config(), context)
    with pytest.raises(FormatError, match=r"sheet 'Staff chart' is a chart sheet.*Register"):
        list(conn.read(None))
    result = conn.check()
    assert (result.reachable, result.format_ok) == (True, False)
    assert "'Staff chart' is a chart sheet" in (result.reason or "")
    named = XlsxSnapshotConnector(xlsx_config(sheet="Staff chart"), context)
    assert "'Staff chart' is a chart sheet" in (named.check().reason or "")
    # the worksheet beside it reads as usual
    rows = [r for b in XlsxSnapshotConnector(xlsx_config(sheet="Register"), context).read(None)
            for r in b.records]
    assert [r.trader_id for r in rows] == ["DE100000", "DE100001", "DE100002"]


# -- xml_snapshot ----------------------------------------------------------------------


@pytest.mark.parametrize(("setting", "value"), [
    ("elements", {"legal_name": "legal_name[@lang="}),
    ("elements", {"legal_name": "name]"}),
    ("elements", {"trader_id": "id[0]"}),
    ("identifier_columns", {"LEI": "lei[@x='1'"}),
    ("tier_column", "tier[@"),
])
def test_a_malformed_element_path_is_a_config_error(
    context: ConnectorContext, setting: str, value: Any
) -> None:
    extra: dict[str, Any] = {setting: value}
    if setting == "tier_column":
        extra["categories_format"] = "codes"
    with pytest.raises(ConfigError, match="is not a usable element path") as caught:
        XmlSnapshotConnector({"path": "eu.xml", **extra}, context)
    name = setting if setting == "tier_column" else f"{setting}.{next(iter(value))}"
    assert list(caught.value.fields) == [name]
    assert str(caught.value).count(name) == 1


def test_well_formed_element_paths_are_accepted(context: ConnectorContext) -> None:
    XmlSnapshotConnector({"path": "eu.xml", "elements": {
        "legal_name": "legal_name[@lang='en']", "city": "address/city", "trader_id": "@id",
        "country": "address/@country", "postcode": None}}, context)


def test_a_deeply_nested_record_is_refused_alone(context: ConnectorContext) -> None:
    assert context.import_dir is not None
    depth = 3000
    text = node_xml([make_record(i) for i in range(3)]).replace(
        "<legal_name>", "<legal_name>" + "<x>" * depth + "deep" + "</x>" * depth, 1)
    (context.import_dir / "eu.xml").write_text(text, encoding="utf-8")
    batches = list(XmlSnapshotConnector({"path": "eu.xml"}, context).read(None))
    first, second, third = [r for b in batches for r in b.records]
    assert first.trader_id == "DE100000"
    assert first.problems == (
        f"operator 1: elements nested more than {MAX_RECORD_DEPTH} levels deep; "
        "the record is refused",)
    assert (second.problems, third.problems) == ((), ())
    assert batches[-1].complete


def test_nesting_up_to_the_limit_is_read(context: ConnectorContext) -> None:
    assert context.import_dir is not None
    inner = MAX_RECORD_DEPTH - 1  # <legal_name> is one level below the record
    text = node_xml([make_record(0)]).replace(
        "<legal_name>", "<legal_name>" + "<x>" * inner + "</x>" * inner, 1)
    (context.import_dir / "eu.xml").write_text(text, encoding="utf-8")
    (record,) = [r for b in XmlSnapshotConnector({"path": "eu.xml"}, context).read(None)
                 for r in b.records]
    assert record.problems == ()


# -- aeo_node --------------------------------------------------------------------------


def node_connector(url: str, context: ConnectorContext) -> AeoNodeConnector:
    return AeoNodeConnector({"base_url": url, "token": TOKEN, "programme": "EU-AEO",
                             "page_size": 10, "backoff_base": 0.01}, context)


def read_until_error(conn: AeoNodeConnector) -> tuple[list[Batch], Exception]:
    """The batches a run would commit, and the error that ends it."""
    batches: list[Batch] = []
    with pytest.raises(FormatError) as caught:
        for batch in conn.read(None):
            batches.append(batch)
    return batches, caught.value


@pytest.mark.parametrize("kept", [
    ("trader_id",), ("authorisation_number",), ("trader_id", "authorisation_number"),
    ("trader_id_scheme", "authorisation_number"),
])
def test_an_unattributable_tombstone_refuses_its_page(
    node: NodeServer, context: ConnectorContext, kept: tuple[str, ...]
) -> None:
    node.add_deletion(3)  # on page 3 (entries 21-26)
    tombstone = node.log[-1][1]
    node.log[-1] = ("deletion", {k: v for k, v in tombstone.items()
                                 if k in (*kept, "programme", "deleted_at")})
    batches, error = read_until_error(node_connector(node.url, context))
    # the pages before it are read; the run fails with the cursor before the page
    assert [b.state for b in batches] == [{"cursor": "c10"}, {"cursor": "c20"}]
    assert "page 3 deletion 1: deletion refused" in str(error)
    missing = [f for f in ("trader_id_scheme", "trader_id") if f not in kept]
    assert f"lacks {' and '.join(missing)}" in str(error)


def test_a_cursor_cycle_is_a_format_error(context: ConnectorContext) -> None:
    following = {"": "A", "A": "B", "B": "A"}  # A -> B -> A -> ...
    served: list[str] = []

    def cycling(environ: dict[str, Any], start_response: Any) -> Any:
        since = dict(p.partition("=")[::2] for p in environ["QUERY_STRING"].split("&")
                     ).get("since", "")
        served.append(since)
        body = {"records": [make_record(len(served))], "deletions": [],
                "next_cursor": following[since], "complete": False}
        return json_response(body)(environ, start_response)

    running = RunningServer(cycling)
    try:
        batches, error = read_until_error(node_connector(running.url, context))
    finally:
        running.stop()
    assert served == ["", "A", "B"]
    assert [b.state for b in batches] == [{"cursor": "A"}, {"cursor": "B"}]
    assert "page 3: next_cursor 'A' was already read in this sync" in str(error)


# -- aeohub connectors check -----------------------------------------------------------


def check_node(app: Any, node: NodeServer) -> Any:
    config = {"base_url": node.url, "token": TOKEN, "programme": "EU-AEO"}
    return app.test_cli_runner().invoke(args=[
        "connectors", "check", "aeo_node", "--json", "--sample", "0",
        "--config", json.dumps(config)])


def test_check_with_an_empty_host_list_reaches_no_host(app: Any, node: NodeServer) -> None:
    app.config["NODE_HOSTS_ALLOWED"] = []  # the production default
    result = check_node(app, node)
    assert result.exit_code == 1, result.output
    shown = json.loads(result.output)
    assert shown["reachable"] is False
    assert "127.0.0.1" in shown["reason"]
    assert node.hits == []  # nothing was sent


def test_check_reaches_the_hosts_on_the_list(app: Any, node: NodeServer) -> None:
    app.config["NODE_HOSTS_ALLOWED"] = ["127.0.0.1"]
    result = check_node(app, node)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["reachable"] is True
    assert node.hits
