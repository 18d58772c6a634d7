"""``csv_snapshot``: a registry published as a CSV file, read from a path or a URL.

The file is streamed (a million rows read in bounded memory) and yields batches of
``batch_size`` records with state ``{"offset": rows_done}``; a read resumed from a saved
state skips that many data rows. The last batch is ``complete``.

The first row is the header. By default the columns are those of the node protocol's CSV
(``connectors.formats.CANONICAL_COLUMNS``); ``columns`` maps canonical fields to other
column names. ``categories`` and ``identifiers`` use the compact sub-formats
``AEOC:valid:2019-01-01|AEOS:suspended:2024-05-01`` and ``MID:USDHLEXP1304ERL:linked``.

A row with the wrong number of columns, undecodable bytes or a date in no configured
format is still emitted, with ``problems`` saying what is wrong, so the hub quarantines it
instead of losing it. A header lacking a required column is a `FormatError`.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator, Mapping
from typing import Any

from marshmallow import fields, validate

from connectors.base import (
    Batch,
    CheckResult,
    ConnectorError,
    Discovery,
    FormatError,
    ProgrammeInfo,
)
from connectors.files import (
    FileSourceConfig,
    check_encoding,
    check_failure,
    open_binary,
    snapshot_identity,
    source_label,
)
from connectors.formats import DateParser
from connectors.tabular import REQUIRED_FIELDS, TableLayout, TabularConnector

__all__ = ["REQUIRED_FIELDS", "CsvSnapshotConfig", "CsvSnapshotConnector"]

#: Changes whenever the parse of a row changes, so that stored fingerprints stop matching.
_FINGERPRINT_VERSION = "csv-1"

# A field up to 64 MiB is read (the csv module stops at 128 KiB), so that an oversized
# field is refused by the hub's validator with its name, and the rest of the row can
# still tie the record to its operator, instead of the whole row being unreadable.
csv.field_size_limit(max(csv.field_size_limit(), 64 * 1024 * 1024))


class CsvSnapshotConfig(FileSourceConfig, TableLayout):
    """Configuration of a ``csv_snapshot`` connection."""

    delimiter = fields.String(
        load_default=",", validate=validate.Length(equal=1),
        metadata={"description": "Column delimiter (one character)"},
    )
    quotechar = fields.String(
        load_default='"', validate=validate.Length(equal=1),
        metadata={"description": "Quote character (one character)"},
    )
    encoding = fields.String(
        load_default="utf-8", validate=check_encoding,
        metadata={"description": "Text encoding: utf-8 (with or without BOM), latin-1, ..."},
    )


def _text_encoding(name: str) -> str:
    """utf-8 is read as utf-8-sig so that a BOM, if present, is dropped."""
    return "utf-8-sig" if codecs.lookup(name).name == "utf-8" else name


class CsvSnapshotConnector(TabularConnector):
    """Reads a CSV snapshot of a registry from a path or URL."""

    name = "csv_snapshot"
    title = "CSV file (path or URL)"
    config_schema = CsvSnapshotConfig

    position_word = "line"
    unreadable_label = "unreadable CSV"

    def _format_settings(self) -> list[Any]:
        return [_FINGERPRINT_VERSION, codecs.lookup(self.config["encoding"]).name]

    # -- rows -------------------------------------------------------------------------

    def _rows(self, text: io.TextIOBase) -> tuple[list[str], Iterator[tuple[int, list[str] | str]]]:
        """The header and an iterator of (first line number, row or csv error message)."""
        reader = csv.reader(
            text, delimiter=self.config["delimiter"], quotechar=self.config["quotechar"]
        )
        try:
            header = next(reader)
        except StopIteration:
            raise FormatError(f"{source_label(self.config)} is empty: no header row") from None
        except csv.Error as exc:
            raise FormatError(f"{source_label(self.config)}: unreadable header ({exc})") from exc

        def rows() -> Iterator[tuple[int, list[str] | str]]:
            previous = reader.line_num
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    yield previous + 1, str(exc)
                    previous = reader.line_num
                    continue
                start, previous = previous + 1, reader.line_num
                if row:  # blank lines are not rows
                    yield start, row

        return header, rows()

    def read(self, state: Mapping[str, Any] | None = None) -> Iterator[Batch]:
        """Stream the file in batches; resume by skipping ``state["offset"]`` rows."""
        offset = int((state or {}).get("offset") or 0)
        dates = DateParser(self.config["date_formats"])
        with (
            open_binary(self.config, self.context, accept="text/csv") as raw,
            io.TextIOWrapper(
                raw, encoding=_text_encoding(self.config["encoding"]),
                errors="surrogateescape", newline="",
            ) as text,
        ):
            header, rows = self._rows(text)
            yield from self._snapshot_batches(header, rows, offset, dates)

    # -- check / discover -------------------------------------------------------------

    def check(self) -> CheckResult:
        """Open the source and read its header and first row."""
        try:
            with (
                open_binary(self.config, self.context, accept="text/csv") as raw,
                io.TextIOWrapper(
                    raw, encoding=_text_encoding(self.config["encoding"]),
                    errors="surrogateescape", newline="",
                ) as text,
            ):
                header, rows = self._rows(text)
                self._columns(header)
                first = next(rows, None)
        except ConnectorError as exc:
            return check_failure(exc)
        return CheckResult(
            reachable=True,
            authenticated=True if self.config["url"] and self.config["token"] else None,
            format_ok=True,
            details={"columns": header, "has_rows": first is not None},
        )

    def discover(self) -> Discovery:
        """A CSV is a full snapshot; the programme is the configured one (count unknown)."""
        programmes = [ProgrammeInfo(self.config["programme"])] if self.config["programme"] else []
        return Discovery(programmes=programmes, incremental=False,
                         snapshot_id=snapshot_identity(self.config, self.context))
