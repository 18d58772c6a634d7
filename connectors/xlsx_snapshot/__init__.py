"""``xlsx_snapshot``: a registry published as an Excel workbook, read from a path or a URL.

One sheet (by name, or by position counting from 1) holds a header row (``header_row``,
the first by default) and one operator per row below it; entirely empty rows are skipped.
Everything else is as for ``csv_snapshot``: ``columns``, the value mapping, batches of
``batch_size`` with state ``{"offset": rows_done}``.

The workbook is read with openpyxl in read-only mode, which streams the sheet's XML row by
row, so a large workbook is read in bounded memory. The sheet's ``<dimension>`` tag (the
used range a writer records) is ignored, as Excel ignores it: a writer that records a
stale range must not make rows beyond it vanish. A chart sheet holds no cells and is
refused by name. Cells become text the way a person reads them:

- a number stored for an identifier keeps the leading zeros its number format shows
  (``00012345`` under the format ``00000000``), and never gains float artefacts or
  an exponent: it is written with the shortest digits that give the stored value back;
- in a date column, a cell Excel knows as a date and a bare Excel serial number (days
  since the workbook's epoch) both become dates, written in the first of ``date_formats``;
- booleans become ``true``/``false``.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema
from openpyxl import load_workbook
from openpyxl.chartsheet import Chartsheet
from openpyxl.utils.datetime import from_excel
from openpyxl.utils.exceptions import InvalidFileException

from connectors.base import (
    Batch,
    CheckResult,
    ConnectorError,
    Discovery,
    FormatError,
    ProgrammeInfo,
    SourceUnavailable,
)
from connectors.files import (
    FileSourceConfig,
    check_failure,
    open_binary,
    snapshot_identity,
    source_label,
)
from connectors.formats import DATE_FIELDS, DateParser, number_text
from connectors.tabular import TableLayout, TabularConnector

__all__ = ["XlsxSnapshotConfig", "XlsxSnapshotConnector", "cell_text"]

#: Changes whenever the parse of a row changes, so that stored fingerprints stop matching.
_FINGERPRINT_VERSION = "xlsx-1"
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class XlsxSnapshotConfig(FileSourceConfig, TableLayout):
    """Configuration of an ``xlsx_snapshot`` connection."""

    sheet = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1),
        metadata={"description": "Name of the sheet to read (else sheet_position)"},
    )
    sheet_position = fields.Integer(
        load_default=1, validate=validate.Range(min=1, max=1000),
        metadata={"description": "Position of the sheet to read, counting from 1"},
    )
    header_row = fields.Integer(
        load_default=1, validate=validate.Range(min=1, max=10_000),
        metadata={"description": "Row number of the header row (rows above are ignored)"},
    )

    @validates_schema
    def _one_sheet(self, data: Mapping[str, Any], **_kwargs: Any) -> None:
        if data.get("sheet") and data.get("sheet_position", 1) != 1:
            raise ValidationError({"sheet": ["Give sheet or sheet_position, not both."]})


def cell_text(value: Any, number_format: str | None, *, date_column: bool,
              date_format: str, epoch: dt.datetime) -> str:
    """A cell's value as the text a person reads in it (see the module's docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime | dt.date):
        if date_column:
            return value.strftime(date_format)
        if isinstance(value, dt.datetime) and value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, int | float):
        if date_column and 0 < value < 2_958_466:  # serials up to 9999-12-31
            converted = from_excel(value, epoch)
            if isinstance(converted, dt.datetime | dt.date):
                return converted.strftime(date_format)
        return number_text(value, number_format)
    if isinstance(value, dt.time):
        return value.isoformat()
    return str(value)


class XlsxSnapshotConnector(TabularConnector):
    """Reads one sheet of an Excel workbook (.xlsx) from a path or URL."""

    name = "xlsx_snapshot"
    title = "Excel workbook (path or URL)"
    config_schema = XlsxSnapshotConfig
    position_word = "row"

    def _format_settings(self) -> list[Any]:
        config = self.config
        return [_FINGERPRINT_VERSION, config["sheet"], config["sheet_position"],
                config["header_row"]]

    @contextmanager
    def _workbook(self) -> Iterator[Any]:
        """The workbook, opened read-only; a URL is downloaded to a temporary file first
        (a workbook is a zip archive, which is read from its end)."""
        label = source_label(self.config)
        with tempfile.TemporaryFile() as spool:
            if self.config.get("path"):
                source: Any = self.context.check_path(self.config["path"])
                if not source.is_file():
                    raise SourceUnavailable(f"cannot open {label!r}: no such file")
            else:
                with open_binary(self.config, self.context, accept=_XLSX) as raw:
                    shutil.copyfileobj(raw, spool, 1 << 20)
                spool.seek(0)
                source = spool
            try:
                workbook = load_workbook(source, read_only=True, data_only=True)
            except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError) as exc:
                raise FormatError(f"{label} is not an Excel workbook (.xlsx): "
                                  f"{type(exc).__name__}: {exc}") from exc
            try:
                yield workbook
            finally:
                workbook.close()

    def _sheet(self, workbook: Any) -> Any:
        """The configured worksheet, its recorded dimensions dropped (see the module's
        docstring); a missing sheet or a chart sheet is a `FormatError`."""
        names = list(workbook.sheetnames)
        label = source_label(self.config)
        if self.config["sheet"]:
            if self.config["sheet"] not in names:
                raise FormatError(f"{label} has no sheet {self.config['sheet']!r}; its sheets "
                                  f"are {', '.join(names)}")
            sheet = workbook[self.config["sheet"]]
        else:
            position = self.config["sheet_position"]
            if position > len(names):
                raise FormatError(f"{label} has {len(names)} sheet(s), not {position}: "
                                  f"{', '.join(names)}")
            sheet = workbook[names[position - 1]]
        if isinstance(sheet, Chartsheet):
            cells = [ws.title for ws in workbook.worksheets]
            raise FormatError(
                f"{label}: sheet {sheet.title!r} is a chart sheet, which holds no rows; set "
                f"sheet or sheet_position to the sheet with the register (worksheets: "
                f"{', '.join(cells) or 'none'})")
        # Excel ignores <dimension>; a stale one would cut the sheet short.
        sheet.reset_dimensions()
        return sheet

    def _rows(self, workbook: Any) -> tuple[list[str], Iterator[tuple[int, list[str] | str]]]:
        """The header and an iterator of (row number, the row's cells as text)."""
        sheet = self._sheet(workbook)
        header_row = self.config["header_row"]
        cells = sheet.iter_rows(min_row=header_row)
        label = source_label(self.config)
        try:
            first = next(cells)
        except StopIteration:
            raise FormatError(f"{label}: sheet {sheet.title!r} has no row {header_row} "
                              "(the header row)") from None
        header = ["" if c.value is None else str(c.value).strip() for c in first]
        while header and not header[-1]:
            header.pop()
        if not header:
            raise FormatError(f"{label}: row {header_row} of sheet {sheet.title!r} is empty; "
                              "set header_row to the row holding the column names")
        columns = self._columns(header)
        date_columns = {columns[f] for f in DATE_FIELDS if f in columns}
        date_format = self.config["date_formats"][0]
        epoch = workbook.epoch
        width = len(header)

        def rows() -> Iterator[tuple[int, list[str] | str]]:
            for number, row in enumerate(cells, start=header_row + 1):
                values = [
                    cell_text(cell.value, cell.number_format
                              if isinstance(cell.value, int | float) else None,
                              date_column=i in date_columns, date_format=date_format,
                              epoch=epoch)
                    for i, cell in enumerate(row)
                ]
                # cells right of the header count only when they hold something
                while len(values) > width and not values[-1].strip():
                    values.pop()
                if any(v.strip() for v in values):
                    yield number, values + [""] * (width - len(values))

        return header, rows()

    def read(self, state: Mapping[str, Any] | None = None) -> Iterator[Batch]:
        """Stream the sheet in batches; resume by skipping ``state["offset"]`` rows."""
        offset = int((state or {}).get("offset") or 0)
        dates = DateParser(self.config["date_formats"])
        with self._workbook() as workbook:
            header, rows = self._rows(workbook)
            yield from self._snapshot_batches(header, rows, offset, dates)

    def check(self) -> CheckResult:
        """Open the workbook, find the sheet and read its header and first row."""
        try:
            with self._workbook() as workbook:
                header, rows = self._rows(workbook)
                first = next(rows, None)
        except ConnectorError as exc:
            return check_failure(exc)
        return CheckResult(
            reachable=True,
            authenticated=True if self.config["url"] and self.config["token"] else None,
            format_ok=True, details={"columns": header, "has_rows": first is not None},
        )

    def discover(self) -> Discovery:
        """A workbook is a full snapshot; the programme is the configured one."""
        programmes = [ProgrammeInfo(self.config["programme"])] if self.config["programme"] else []
        return Discovery(programmes=programmes, incremental=False,
                         snapshot_id=snapshot_identity(self.config, self.context))
