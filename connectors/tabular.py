"""Rows with a header, to canonical records: what the CSV, Excel and SQL connectors share.

A `TabularConnector` reads rows of text under a header row. ``columns`` maps canonical
fields to header names (by default the node protocol's CSV columns,
``connectors.formats.CANONICAL_COLUMNS``); ``categories`` and ``identifiers`` use the
compact sub-formats ``AEOC:valid:2019-01-01|AEOS:suspended:2024-05-01`` and
``MID:USDHLEXP1304ERL:linked`` unless the value mapping (`connectors.mapping`) says
otherwise. Records are handed over unparsed (`DeferredRecords`), with a fingerprint that
covers the row and every setting its parse depends on, so the hub skips unchanged rows
without parsing them.

A row with the wrong number of columns, undecodable text or a date in no configured format
is still emitted, with ``problems`` saying what is wrong, so the hub quarantines it
instead of losing it. A header lacking a required column is a `FormatError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from marshmallow import Schema, fields, validate

from connectors.base import (
    Batch,
    CanonicalRecord,
    CategoryEntry,
    Connector,
    ConnectorContext,
    DeferredRecords,
    FormatError,
)
from connectors.files import FieldMapping, source_label
from connectors.formats import (
    CANONICAL_COLUMNS,
    DATE_FIELDS,
    DateParser,
    as_bool,
    fingerprint_json,
    fingerprint_text,
    fingerprint_values,
    parse_categories,
    parse_identifiers,
)
from connectors.mapping import (
    CATEGORY_TEXT,
    Unread,
    ValueMapper,
    report_unread,
    unread_state,
)

__all__ = ["REQUIRED_FIELDS", "TableLayout", "TabularConnector"]

#: Fields whose column must be present in the header (``programme`` too when the
#: connection does not configure one).
REQUIRED_FIELDS: tuple[str, ...] = ("trader_id", "legal_name", "status")

_SURROGATES = re.compile("[\udc80-\udcff]")

#: Plain text fields, read as stripped text (empty -> None).
_SCALAR_FIELDS: tuple[str, ...] = (
    "programme", "authorisation_number", "trader_id_scheme", "trader_id", "legal_name",
    "street", "city", "postcode", "region", "country", "status", "issuing_authority",
    "changed_at",
)
_CACHE_LIMIT = 4096


class _RowCaches:
    """Per-read caches of values registries repeat (category lists, yes/no spellings)."""

    def __init__(self) -> None:
        self.categories: dict[str, tuple[CategoryEntry, ...]] = {}
        self.flags: dict[str | None, bool | str | None] = {}

    def flag(self, value: str | None) -> bool | str | None:
        try:
            return self.flags[value]
        except KeyError:
            result = as_bool(value)
            if len(self.flags) < _CACHE_LIMIT:
                self.flags[value] = result
            return result


class TableLayout(Schema):
    """The settings of every connector that reads rows under a header."""

    columns = FieldMapping(
        metadata={"description": "canonical field -> column name (null: do not read)"},
    )
    list_separator = fields.String(
        load_default="|", validate=validate.Length(equal=1),
        metadata={"description": "Separates entries in categories / identifiers"},
    )
    part_separator = fields.String(
        load_default=":", validate=validate.Length(equal=1),
        metadata={"description": "Separates the parts of one category / identifier entry"},
    )


class TabularConnector(Connector):
    """Base of the connectors that read rows of text under a header row."""

    #: How a row's position is named in messages ("line 42", "row 42").
    position_word = "row"
    #: What a row the source could not read is called in its problem.
    unreadable_label = "unreadable row"

    def __init__(self, config: Mapping[str, Any],
                 context: ConnectorContext | None = None) -> None:
        super().__init__(config, context)
        self.mapper = ValueMapper(self.config)

    def _format_settings(self) -> list[Any]:
        """The connector's own settings a row's parse depends on (with a version that
        changes whenever the parse changes), for the fingerprint."""
        return [self.name]

    # -- header -----------------------------------------------------------------------

    def _columns(self, header: Sequence[str]) -> dict[str, int]:
        """canonical field -> column index; raise FormatError for missing columns."""
        index: dict[str, int] = {}
        for i, name in enumerate(header):
            index.setdefault(name.strip().lstrip("\ufeff").lower(), i)
        explicit: Mapping[str, str | None] = self.config["columns"]
        optional = self.mapper.optional_fields
        required = set(REQUIRED_FIELDS) - optional
        if not self.config["programme"] and "programme" not in optional:
            required.add("programme")
        if not self.config["trader_id_scheme"] and "trader_id_scheme" not in optional:
            required.add("trader_id_scheme")
        found: dict[str, int] = {}
        missing: list[str] = []
        for fld in CANONICAL_COLUMNS:
            column = explicit.get(fld, fld)
            if column is None:
                if fld in required:
                    missing.append(f"{fld} (mapped to nothing)")
                continue
            position = index.get(column.strip().lower())
            if position is not None:
                found[fld] = position
            elif fld in required or fld in explicit:
                missing.append(column if column == fld else f"{column} (for {fld})")
        for name in self.mapper.source_names:
            if name.strip().lower() not in index:
                missing.append(name)
        if missing:
            raise FormatError(
                f"{source_label(self.config)}: the header lacks required column(s) "
                f"{', '.join(missing)}; header has {', '.join(h.strip() for h in header)}"
            )
        return found

    def _extra_columns(self, header: Sequence[str]) -> dict[str, int]:
        """Column name -> index of the columns the value mapping reads (``_columns`` has
        made sure they exist)."""
        index: dict[str, int] = {}
        for i, name in enumerate(header):
            index.setdefault(name.strip().lstrip("\ufeff").lower(), i)
        return {name: index[name.strip().lower()] for name in self.mapper.source_names}

    @staticmethod
    def _unread(header: Sequence[str], read: Sequence[int]) -> tuple[Unread, list[int]]:
        """The columns nothing reads, and their indices (reported when they hold data)."""
        taken = set(read)
        indices = [i for i in range(len(header)) if i not in taken]
        return Unread(header[i].strip().lstrip("\ufeff") for i in indices), indices

    def _mapped(self, record: CanonicalRecord, row: Sequence[str], columns: Mapping[str, int],
                extra: Mapping[str, int]) -> CanonicalRecord:
        """The record with the connection's value mapping applied."""
        size = len(row)
        values = {name: [row[i] if i < size else None] for name, i in extra.items()}
        at = columns.get("categories")
        if self.mapper.codes and at is not None and at < size:
            values[CATEGORY_TEXT] = [row[at]]
        return self.mapper.apply(record, values)

    # -- rows -------------------------------------------------------------------------

    def _parse_salt(self, columns: Mapping[str, int], width: int) -> str:
        """What, besides a row, decides how it parses: the header's column positions and
        the parsing settings. Prefixed to each row's fingerprint, so that a row read under
        another header or configuration is never taken for the unchanged one."""
        config = self.config
        settings = [
            *self._format_settings(), sorted(columns.items()), width, config["programme"],
            config["trader_id_scheme"], list(config["date_formats"]),
            config["list_separator"], config["part_separator"], self.mapper.salt,
        ]
        return fingerprint_json(settings) + "\x1e"

    @staticmethod
    def _fingerprint(salt: str, row: list[str]) -> str:
        joined = "\x1f".join(row)
        if joined.count("\x1f") != len(row) - 1:
            # a value holds the separator itself: fingerprint an unambiguous form
            joined = json.dumps(row)
        return fingerprint_text(salt + joined)

    def _record(
        self, row: list[str], line: int, columns: Mapping[str, int], width: int,
        dates: DateParser, caches: _RowCaches | None = None, fingerprint: str | None = None,
        extra: Mapping[str, int] | None = None,
    ) -> CanonicalRecord:
        position = f"{self.position_word} {line}"
        problems: list[str] = []
        size = len(row)
        if size != width:
            problems.append(f"{position}: {size} columns, expected {width}")
        joined = "\x1f".join(row)
        if fingerprint is None:
            fingerprint = self._fingerprint(self._parse_salt(columns, width), row)
        if not joined.isascii() and _SURROGATES.search(joined):
            problems.append(
                f"{position}: bytes that are not valid {self.config.get('encoding')} "
                "(replaced by U+FFFD); check the file's encoding"
            )
            row = [_SURROGATES.sub("\ufffd", v) for v in row]
        if caches is None:
            caches = _RowCaches()

        def get(fld: str) -> str | None:
            i = columns.get(fld)
            return row[i] if i is not None and i < size else None

        values: dict[str, Any] = {}
        for fld in _SCALAR_FIELDS:
            i = columns.get(fld)
            values[fld] = (row[i].strip() or None) if i is not None and i < size else None
        for fld in DATE_FIELDS:
            values[fld] = dates(get(fld), fld, position, problems)
        if not self.mapper.active:
            values["programme"] = values["programme"] or self.config["programme"]
            values["trader_id_scheme"] = (values["trader_id_scheme"]
                                          or self.config["trader_id_scheme"])
        seps = {
            "list_separator": self.config["list_separator"],
            "part_separator": self.config["part_separator"],
        }
        text = None if self.mapper.codes else get("categories")
        categories = caches.categories.get(text) if text is not None else ()
        if categories is None:
            before = len(problems)
            categories = parse_categories(text, dates, position, problems, **seps)
            if len(problems) == before and len(caches.categories) < _CACHE_LIMIT:
                caches.categories[text] = categories  # type: ignore[index]
        record = CanonicalRecord(
            **values,
            categories=categories,
            identifiers=parse_identifiers(get("identifiers"), position, problems, **seps),
            consent_share=caches.flag(get("consent_share")),
            consent_publish=caches.flag(get("consent_publish")),
            fingerprint=fingerprint,
            position=position,
            problems=tuple(problems),
        )
        if self.mapper.active:
            record = self._mapped(record, row, columns, extra or {})
        return record

    def _row_parser(
        self, columns: Mapping[str, int], width: int, dates: DateParser,
        extra: Mapping[str, int] | None = None,
    ) -> Callable[[list[str], int, str], CanonicalRecord]:
        """`_record` for one read, specialised to its columns.

        A row of the header's width, in the file's encoding, takes a straight path (column
        positions resolved once, repeated dates and category lists from caches); any other
        row goes through `_record`, which describes its problems. Both give equal records.
        """
        caches = _RowCaches()
        config = self.config
        word = self.position_word
        scalars = tuple((fld, columns.get(fld)) for fld in _SCALAR_FIELDS)
        date_columns = tuple((fld, columns.get(fld)) for fld in sorted(DATE_FIELDS))
        default_programme, default_scheme = config["programme"], config["trader_id_scheme"]
        mapper = self.mapper
        extra = extra or {}
        if mapper.active:  # the mapping gives the defaults, after its maps
            default_programme = default_scheme = None
        list_sep, part_sep = config["list_separator"], config["part_separator"]
        at_categories, at_identifiers = columns.get("categories"), columns.get("identifiers")
        if mapper.codes:  # the mapping reads the bare codes
            at_categories = None
        at_share, at_publish = columns.get("consent_share"), columns.get("consent_publish")
        iso_dates: dict[str, str] = {}

        def parse(row: list[str], line: int, fingerprint: str) -> CanonicalRecord:
            if len(row) != width or (not "".join(row).isascii() and _SURROGATES.search(
                    "\x1f".join(row))):
                return self._record(row, line, columns, width, dates, caches, fingerprint,
                                    extra)
            position = f"{word} {line}"
            problems: list[str] = []
            values = {fld: (row[i].strip() or None) if i is not None else None
                      for fld, i in scalars}
            for fld, i in date_columns:
                if i is None:
                    values[fld] = None
                    continue
                text = row[i].strip()
                if not text:
                    values[fld] = None
                elif text in iso_dates:
                    values[fld] = iso_dates[text]
                else:
                    before = len(problems)
                    values[fld] = converted = dates(text, fld, position, problems)
                    if len(problems) == before and converted is not None and (
                            len(iso_dates) < _CACHE_LIMIT):
                        iso_dates[text] = converted
            values["programme"] = values["programme"] or default_programme
            values["trader_id_scheme"] = values["trader_id_scheme"] or default_scheme
            listed = row[at_categories] if at_categories is not None else None
            categories = caches.categories.get(listed) if listed is not None else ()
            if categories is None:
                assert listed is not None
                before = len(problems)
                categories = parse_categories(listed, dates, position, problems,
                                              list_separator=list_sep,
                                              part_separator=part_sep)
                if len(problems) == before and len(caches.categories) < _CACHE_LIMIT:
                    caches.categories[listed] = categories
            identifiers = parse_identifiers(
                row[at_identifiers] if at_identifiers is not None else None, position,
                problems, list_separator=list_sep, part_separator=part_sep)
            record = CanonicalRecord(
                **values,
                categories=categories,
                identifiers=identifiers,
                consent_share=caches.flag(row[at_share] if at_share is not None else None),
                consent_publish=caches.flag(row[at_publish] if at_publish is not None
                                            else None),
                fingerprint=fingerprint,
                position=position,
                problems=tuple(problems),
            )
            if mapper.active:
                record = self._mapped(record, row, columns, extra)
            return record

        return parse

    def _snapshot_batches(self, header: list[str],
                          rows: Iterator[tuple[int, list[str] | str]], offset: int,
                          dates: DateParser) -> Iterator[Batch]:
        """A snapshot's batches of `_chunks`, each with the offset to resume from; the
        last one complete."""
        chunks = self._chunks(header, rows, offset, dates)
        chunk = next(chunks)
        for following in chunks:
            records, done, _last, unread = chunk
            yield Batch(records=records, state={"offset": done, **unread_state(unread)})
            chunk = following
        records, _done, _last, unread = chunk
        yield Batch(records=records, state={"offset": None, **unread_state(unread)},
                    complete=True)

    def _chunks(self, header: list[str], rows: Iterator[tuple[int, list[str] | str]],
                offset: int, dates: DateParser
                ) -> Iterator[tuple[DeferredRecords, int, list[str] | None, Unread]]:
        """The rows after the first ``offset`` in chunks of ``batch_size`` records:
        (records, rows done, the chunk's last row, unread columns so far). The last
        chunk, possibly empty, is yielded when ``rows`` ends. A row given as a string is
        an unreadable one (the string says why)."""
        size: int = self.config["batch_size"]
        columns = self._columns(header)
        extra = self._extra_columns(header)
        unread, unread_at = self._unread(header, [*columns.values(), *extra.values()])
        width = len(header)
        salt = self._parse_salt(columns, width)
        parse_row = self._row_parser(columns, width, dates, extra)
        default_programme = self.config["programme"]
        programme_at = columns.get("programme")
        mapper = self.mapper
        word = self.position_word

        def parse(source: tuple[int, list[str] | str, str]) -> CanonicalRecord:
            line, row, fingerprint = source
            if isinstance(row, str):
                return CanonicalRecord(
                    fingerprint=fingerprint, position=f"{word} {line}",
                    problems=(f"{word} {line}: {self.unreadable_label} ({row})",),
                )
            return parse_row(row, line, fingerprint)

        done = 0
        sources: list[tuple[int, list[str] | str, str]] = []
        fingerprints: list[str] = []
        programmes: list[str | None] = []
        last: list[str] | None = None
        for line, row in rows:
            done += 1
            if done <= offset:
                continue
            if isinstance(row, str):
                fingerprint = fingerprint_values([row])
                programme = None
            else:
                last = row
                fingerprint = self._fingerprint(salt, row)
                programme = None
                if programme_at is not None and programme_at < len(row):
                    programme = row[programme_at].strip() or None
                if mapper.active:
                    programme = mapper.programme(programme)
                else:
                    programme = programme or default_programme
                if unread_at:
                    unread.see([row[i] if i < len(row) else None for i in unread_at])
            sources.append((line, row, fingerprint))
            fingerprints.append(fingerprint)
            programmes.append(programme)
            if len(sources) >= size:
                yield DeferredRecords(sources, fingerprints, programmes, parse), done, last, \
                    unread
                sources, fingerprints, programmes = [], [], []
        self.log.debug("%s: %d rows", self.name, done)
        report_unread(self.log, self.name, unread)
        yield DeferredRecords(sources, fingerprints, programmes, parse), done, last, unread
