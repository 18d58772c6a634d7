"""Format-level parsing shared by the file connectors (CSV, XML) and the node connector.

Only format is handled here: empty values to ``None``, configured date formats to ISO,
plain booleans, the compact ``categories``/``identifiers`` sub-formats of the node
protocol's CSV, and fingerprints. Whatever cannot be parsed is kept as read and described
in the record's ``problems``; semantic validation is the hub's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from connectors.base import CategoryEntry, IdentifierEntry

__all__ = [
    "CANONICAL_COLUMNS",
    "DATE_FIELDS",
    "DEFAULT_DATE_FORMATS",
    "DateParser",
    "as_bool",
    "blank_to_none",
    "fingerprint_json",
    "fingerprint_text",
    "fingerprint_values",
    "number_text",
    "parse_categories",
    "parse_identifiers",
]

#: The simulator's CSV columns, in order (docs/node-protocol.md); also the default
#: mapping canonical field -> column / element name.
CANONICAL_COLUMNS: tuple[str, ...] = (
    "programme", "authorisation_number", "trader_id_scheme", "trader_id", "legal_name",
    "street", "city", "postcode", "region", "country", "status", "status_effective",
    "categories", "authorised_on", "valid_from", "valid_until", "issuing_authority",
    "identifiers", "consent_share", "consent_publish", "changed_at",
)

#: Fields holding a calendar date, converted with the configured formats.
DATE_FIELDS: frozenset[str] = frozenset(
    {"status_effective", "authorised_on", "valid_from", "valid_until"}
)

DEFAULT_DATE_FORMATS: tuple[str, ...] = ("%Y-%m-%d",)

_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})


def blank_to_none(value: str | None) -> str | None:
    """Strip surrounding whitespace; an empty value is ``None``."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def as_bool(value: str | bool | None) -> bool | str | None:
    """``True``/``False`` for plain spellings; anything else as read (the hub rejects it)."""
    if value is None or isinstance(value, bool):
        return value
    text = value.strip()
    if not text:
        return None
    low = text.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    return text


class DateParser:
    """Converts dates written in any of the configured ``strptime`` formats to ISO."""

    _CACHE_SIZE = 16384  # registries repeat dates a lot; strptime is slow

    def __init__(self, formats: Sequence[str] | None = None) -> None:
        self.formats = tuple(formats) if formats else DEFAULT_DATE_FORMATS
        self._cache: dict[str, str] = {}

    def _convert(self, value: str) -> str | None:
        for fmt in self.formats:
            if fmt == "%Y-%m-%d" and len(value) == 10 and value[4] == "-" and value[7] == "-":
                try:
                    return date.fromisoformat(value).isoformat()
                except ValueError:
                    pass
            try:
                return datetime.strptime(value, fmt).date().isoformat()
            except ValueError:
                continue
        return None

    def __call__(
        self, value: str | None, what: str, position: str | None, problems: list[str]
    ) -> str | None:
        """ISO ``YYYY-MM-DD`` for ``value``; on failure the raw value and a problem."""
        value = blank_to_none(value)
        if value is None:
            return None
        converted = self._cache.get(value)
        if converted is None:
            converted = self._convert(value)
            if converted is not None:
                if len(self._cache) >= self._CACHE_SIZE:
                    self._cache.clear()
                self._cache[value] = converted
        if converted is not None:
            return converted
        where = f"{position}: " if position else ""
        problems.append(
            f"{where}{what} {value!r} matches none of the date formats "
            f"{', '.join(self.formats)}"
        )
        return value


def parse_categories(
    text: str | None,
    dates: DateParser,
    position: str | None,
    problems: list[str],
    *,
    list_separator: str = "|",
    part_separator: str = ":",
) -> tuple[CategoryEntry, ...]:
    """``AEOC:valid:2019-01-01|AEOS:suspended:2024-05-01`` -> category entries; a fourth
    part is the component's tier (``importer:valid:2015-03-01:tier2``)."""
    text = blank_to_none(text)
    if text is None:
        return ()
    entries: list[CategoryEntry] = []
    where = f"{position}: " if position else ""
    for raw_item in text.split(list_separator):
        item = raw_item.strip()
        if not item:
            continue
        parts = item.split(part_separator)
        if len(parts) > 4:
            problems.append(
                f"{where}category {item!r} has {len(parts)} parts, expected code"
                f"{part_separator}status{part_separator}since (and a tier)"
            )
            parts = parts[:4]
        code = blank_to_none(parts[0])
        status = blank_to_none(parts[1]) if len(parts) > 1 else None
        since = dates(parts[2], f"category {code} since", position, problems) \
            if len(parts) > 2 else None
        tier = blank_to_none(parts[3]) if len(parts) > 3 else None
        entries.append(CategoryEntry(code=code, status=status, since=since, tier=tier))
    return tuple(entries)


def parse_identifiers(
    text: str | None,
    position: str | None,
    problems: list[str],
    *,
    list_separator: str = "|",
    part_separator: str = ":",
) -> tuple[IdentifierEntry, ...]:
    """``MID:USDHLEXP1304ERL:linked|LEI:...:declared`` -> identifier entries.

    The scheme is before the first separator; a trailing ``linked``/``declared`` flag is
    optional; the value is everything between (values may contain the separator).
    """
    text = blank_to_none(text)
    if text is None:
        return ()
    entries: list[IdentifierEntry] = []
    where = f"{position}: " if position else ""
    for raw_item in text.split(list_separator):
        item = raw_item.strip()
        if not item:
            continue
        scheme, sep, rest = item.partition(part_separator)
        if not sep:
            problems.append(
                f"{where}identifier {item!r} lacks a scheme (SCHEME{part_separator}VALUE)"
            )
            entries.append(IdentifierEntry(scheme=None, value=blank_to_none(item)))
            continue
        value, flag_sep, flag = rest.rpartition(part_separator)
        linked = False
        if flag_sep and flag.strip().lower() in ("linked", "declared"):
            linked = flag.strip().lower() == "linked"
        else:
            value = rest
        entries.append(
            IdentifierEntry(scheme=blank_to_none(scheme), value=blank_to_none(value), linked=linked)
        )
    return tuple(entries)


def fingerprint_values(values: Iterable[str]) -> str:
    """blake2b-128 hex of a raw row's values (joined by the unit separator)."""
    return fingerprint_text("\x1f".join(values))


def fingerprint_text(text: str) -> str:
    """blake2b-128 hex of a row's values already joined by the unit separator."""
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


def fingerprint_bytes(data: bytes) -> str:
    """blake2b-128 hex of raw bytes."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def fingerprint_json(document: Mapping[str, Any] | Any) -> str:
    """blake2b-128 hex of the canonical JSON of a record (sorted keys, compact)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def number_text(value: int | float | Decimal, number_format: str | None = None) -> str:
    """A number as text: the shortest digits that give it back, integers without a
    decimal point, zero-padded when the number format is all zeros (``000000``)."""
    if isinstance(value, float | Decimal):
        # a float's shortest form gives it back without binary artefacts
        exact = Decimal(repr(value)) if isinstance(value, float) else value
        if exact == exact.to_integral_value():
            text = format(exact.to_integral_value(), "f")
        else:
            return format(exact.normalize(), "f")
    else:
        text = str(value)
    if number_format and set(number_format) == {"0"} and not text.startswith("-"):
        text = text.zfill(len(number_format))
    return text
