"""Writes the Excel workbooks the tests and benchmarks read (the shipped example too)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

#: The example register's columns (tests/connectors/fixtures/workbook.xlsx).
HEADER = ("Business Administration No.", "Company", "Address", "City", "Type",
          "Certified", "Status", "Certificate")


def example_rows() -> list[tuple[Any, ...]]:
    """The example register: identifiers stored as numbers (leading zeros shown by the
    number format), certification dates as dates and as bare Excel serial numbers."""
    return [
        (4595257, "Formosa Electronics Co., Ltd.", "No. 1, Sec. 2, Keelung Rd.", "Taipei",
         "Security", dt.date(2019, 5, 20), "Valid", "TWAEO-2019-0031"),
        (4595263, "Kaohsiung Shipping Corp.", "88 Harbour Rd.", "Kaohsiung", "General",
         43840, "Valid", "TWAEO-2020-0007"),  # 43840 is 2020-01-10 as an Excel serial
        (4595278, "Taichung Precision Machinery Inc.", "5 Industrial 38th Rd.", "Taichung",
         "Security/General", dt.datetime(2021, 3, 1), "Suspended", 2021000451),
    ]


def write_workbook(path: Path, rows: Iterable[Sequence[Any]], *,
                   header: Sequence[str] = HEADER, title_rows: int = 2) -> Path:
    """A workbook with a notes sheet first, then the sheet "Register" whose header is on
    row ``title_rows + 1``. The first column is formatted ``00000000``. Written in
    openpyxl's write-only mode, so a large workbook takes little memory."""
    workbook = Workbook(write_only=True)
    notes = workbook.create_sheet("Notes")
    notes.append(["This workbook lists Taiwan's certified AEOs."])
    sheet = workbook.create_sheet("Register")
    for i in range(title_rows):
        sheet.append([f"AEO register, published {dt.date(2026, 12, 1).isoformat()}"
                      if i == 0 else None])
    sheet.append(list(header))
    for row in rows:
        cells: list[Any] = []
        for i, value in enumerate(row):
            cell = WriteOnlyCell(sheet, value=value)
            if i == 0 and isinstance(value, int):
                cell.number_format = "00000000"
            elif isinstance(value, dt.date):
                cell.number_format = "yyyy-mm-dd"
            cells.append(cell)
        sheet.append(cells)
    workbook.save(path)
    return path
