"""The xlsx_snapshot connector: sheets, header rows, numbers, dates, mapping, streaming."""

from __future__ import annotations

import datetime as dt
import functools
import http.server
from pathlib import Path
from typing import Any

import pytest

from connectors.base import CategoryEntry, ConfigError, ConnectorContext
from connectors.catalogue import available_connectors
from connectors.xlsx_snapshot import XlsxSnapshotConnector, cell_text
from tests.connectors.examples import FIXTURES, example, install
from tests.connectors.workbooks import HEADER, write_workbook
from tests.serving import serving

EPOCH = dt.datetime(1899, 12, 30)


def read_all(connector: XlsxSnapshotConnector) -> tuple[list[Any], list[dict[str, Any]]]:
    batches = list(connector.read(None))
    return [r for b in batches for r in b.records], [b.state for b in batches]


def test_the_example_workbook(context: ConnectorContext) -> None:
    assert context.import_dir is not None
    example = install("workbook", context.import_dir)
    found, states = read_all(XlsxSnapshotConnector(example["config"], context))
    first, second, third = found
    # an identifier stored as a number keeps the leading zero its format shows
    assert [r.trader_id for r in found] == ["04595257", "04595263", "04595278"]
    assert (first.legal_name, first.city, first.country) == (
        "Formosa Electronics Co., Ltd.", "Taipei", "TW")
    assert first.authorised_on == "2019-05-20"  # a date cell
    assert second.authorised_on == "2020-01-10"  # a bare Excel serial number
    assert third.authorised_on == "2021-03-01"  # a date-time cell
    assert third.authorisation_number == "2021000451"  # a number, no ".0"
    assert first.categories == (CategoryEntry("SECURITY", "valid", "2019-05-20"),)
    assert third.categories == (CategoryEntry("SECURITY", "suspended", "2021-03-01"),
                                CategoryEntry("GENERAL", "suspended", "2021-03-01"))
    assert [r.position for r in found] == ["row 4", "row 5", "row 6"]
    assert all(r.problems == () for r in found)
    assert states == [{"offset": None}]


@pytest.mark.parametrize(("value", "number_format", "expected"), [
    (4711, "00000000", "00004711"),
    (4711.0, "General", "4711"),
    (0.1 + 0.2, "General", "0.30000000000000004"),
    (1.1, "General", "1.1"),
    (12345678901234567, "General", "12345678901234567"),
    (1.2345678901234567e19, "General", "12345678901234567000"),  # no binary tail
    (1e-7, "General", "0.0000001"),
    (True, None, "true"),
    (None, None, ""),
])
def test_numbers_read_as_people_see_them(value: Any, number_format: str | None,
                                         expected: str) -> None:
    assert cell_text(value, number_format, date_column=False, date_format="%Y-%m-%d",
                     epoch=EPOCH) == expected


def test_dates_take_the_first_configured_format() -> None:
    assert cell_text(43840, "General", date_column=True, date_format="%d.%m.%Y",
                     epoch=EPOCH) == "10.01.2020"
    assert cell_text(dt.date(2020, 1, 10), None, date_column=True, date_format="%d.%m.%Y",
                     epoch=EPOCH) == "10.01.2020"


def test_sheet_by_position_and_missing_sheet(context: ConnectorContext) -> None:
    assert context.import_dir is not None
    install("workbook", context.import_dir)
    base = {"path": "workbook.xlsx", "programme": "TW-AEO", "trader_id_scheme": "TW_BAN",
            "header_row": 3, "columns": {"trader_id": HEADER[0], "legal_name": HEADER[1],
                                         "status": HEADER[6]}}
    found, _ = read_all(XlsxSnapshotConnector({**base, "sheet_position": 2}, context))
    assert len(found) == 3
    result = XlsxSnapshotConnector({**base, "sheet": "Liste"}, context).check()
    assert not result.ok and result.reason is not None
    assert "no sheet 'Liste'" in result.reason and "Register" in result.reason
    result = XlsxSnapshotConnector({**base, "sheet_position": 3}, context).check()
    assert result.reason is not None and "2 sheet(s), not 3" in result.reason
    # the notes sheet has no such header: the missing columns are named
    result = XlsxSnapshotConnector({**base, "header_row": 1}, context).check()
    assert result.reason is not None and "lacks required column" in result.reason
    with pytest.raises(ConfigError):
        XlsxSnapshotConnector({**base, "sheet": "Register", "sheet_position": 2}, context)


def test_not_a_workbook_is_a_format_error(context: ConnectorContext) -> None:
    assert context.import_dir is not None
    (context.import_dir / "fake.xlsx").write_text("EORI,name\n", encoding="utf-8")
    result = XlsxSnapshotConnector({"path": "fake.xlsx"}, context).check()
    assert result.format_ok is False and "not an Excel workbook" in (result.reason or "")


def test_resume_and_batches(context: ConnectorContext, tmp_path: Path) -> None:
    assert context.import_dir is not None
    rows = [(4595257 + i, f"Firm {i}", "", "", "Security", 43840, "Valid", f"C{i}")
            for i in range(7)]
    write_workbook(context.import_dir / "big.xlsx", rows)
    config = {**install("workbook", context.import_dir)["config"], "path": "big.xlsx",
              "batch_size": 3}
    connector = XlsxSnapshotConnector(config, context)
    batches = list(connector.read(None))
    assert [len(b.records) for b in batches] == [3, 3, 1]
    assert [b.state["offset"] for b in batches] == [3, 6, None]
    resumed = list(connector.read({"offset": 6}))
    assert [r.legal_name for b in resumed for r in b.records] == ["Firm 6"]


def test_registered_as_an_entry_point() -> None:
    assert available_connectors()["xlsx_snapshot"] is XlsxSnapshotConnector


def test_a_workbook_from_a_url(context: ConnectorContext) -> None:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(FIXTURES))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    with serving(server):
        config = {**example("workbook")["config"], "path": None,
                  "url": f"http://127.0.0.1:{server.server_address[1]}/workbook.xlsx"}
        found, _ = read_all(XlsxSnapshotConnector(config, context))
        assert [r.trader_id for r in found] == ["04595257", "04595263", "04595278"]
        missing = {**config, "url": config["url"].replace("workbook", "nothing")}
        assert XlsxSnapshotConnector(missing, context).check().ok is False
