"""Value mappings: an administration's own words and layouts turned into the hub's.

One module used by every file and database connector (CSV, XML, Excel, SQL), so that the
same settings mean the same thing everywhere:

- ``values: {field: {source value: canonical value}}`` translates the source's own codes
  (status ``gültig`` -> ``valid``, category ``Sicherheit`` -> ``AEOS``, tier ``Tier II`` ->
  ``tier2``, country ``Deutschland`` -> ``DE``, a scheme name, a yes/no word). Source
  values are compared with case and surrounding whitespace ignored. Once a field has a
  map, every value of that field must be in it: a value that is not becomes a record
  problem naming the value and the map, so the hub quarantines the record instead of
  storing a word it does not know;
- ``defaults: {field: value}`` fills fields the source lacks (consent to publish for a
  published list, the issuing authority). Consent to share is never inferred from
  publication: it is set only when the source or ``defaults`` says so;
- ``categories_format: codes`` reads the categories column as bare codes (``AEOF`` or
  ``AEOC/AEOS``, split on ``codes_separator``); ``category_columns`` reads one column per
  category (any value but an empty or "no" one means the operator holds it). Either way
  each category takes the operator's own status and status date (else its
  authorisation date), and the tier in ``tier_column`` when one is set;
- ``identifier_columns: {scheme: column}`` reads other identifiers one column per scheme;
- ``key: [legal_name, country, issuing_authority]`` derives a stable key from canonical
  fields for sources that carry no identifier. The key is a digest of the normalised
  values under the scheme ``DERIVED``, so it never passes for a registered identifier.

`Unread` tracks source columns that hold data and that no setting reads, so that a
connector can report them (``check``, the run's state) instead of losing them silently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from connectors.base import CanonicalRecord, CategoryEntry, IdentifierEntry
from connectors.formats import as_bool, fingerprint_json

__all__ = [
    "CATEGORY_TEXT",
    "DERIVED_SCHEME",
    "MAPPED_FIELDS",
    "MappingConfig",
    "Unread",
    "ValueMapper",
    "report_unread",
    "unmapped_value",
    "unread_state",
]

#: The scheme of a stable key derived from other fields (``key``).
DERIVED_SCHEME = "DERIVED"

#: Fields whose source values may be translated by ``values``. ``identifier_scheme``
#: translates the scheme names of other identifiers; ``status`` applies to the overall
#: status and to each category's own status; ``tier`` to each category's tier (C-TPAT).
MAPPED_FIELDS: tuple[str, ...] = (
    "programme", "trader_id_scheme", "status", "country", "categories", "tier",
    "identifier_scheme", "consent_share", "consent_publish",
)

#: Fields ``defaults`` may fill, and fields ``key`` may be derived from.
_SCALAR_FIELDS: tuple[str, ...] = (
    "programme", "authorisation_number", "trader_id_scheme", "legal_name", "street",
    "city", "postcode", "region", "country", "status", "status_effective",
    "authorised_on", "valid_from", "valid_until", "issuing_authority",
)
DEFAULTABLE_FIELDS: tuple[str, ...] = (*_SCALAR_FIELDS, "consent_share", "consent_publish")

#: The key under which a connector hands the raw categories text to `ValueMapper.apply`
#: when ``categories_format`` is ``codes``.
CATEGORY_TEXT = "\x00categories"

_UNMAPPED = re.compile(r"(?P<field>[a-z_]+) (?P<value>'(?:[^'\\]|\\.)*'|\"[^\"]*\") is not in "
                       r"values\.(?P=field)")


def _norm(value: str) -> str:
    """How source values are compared: case and surrounding whitespace ignored."""
    return unicodedata.normalize("NFC", value).strip().casefold()


class MappingConfig(Schema):
    """The mapping settings every file and database connector accepts."""

    values = fields.Dict(
        keys=fields.String(validate=validate.OneOf(MAPPED_FIELDS)),
        values=fields.Dict(keys=fields.String(), values=fields.String()),
        load_default=dict,
        metadata={"description": "field -> {source value: canonical value}; a value missing "
                                 "from a field's map quarantines the record"},
    )
    defaults = fields.Dict(
        keys=fields.String(validate=validate.OneOf(DEFAULTABLE_FIELDS)),
        values=fields.Raw(allow_none=True),
        load_default=dict,
        metadata={"description": "field -> value used when the source gives none"},
    )
    categories_format = fields.String(
        load_default="entries", validate=validate.OneOf(["entries", "codes"]),
        metadata={"description": "entries: CODE:status:since lists; codes: bare category "
                                 "codes taking the operator's status"},
    )
    codes_separator = fields.String(
        load_default="/", validate=validate.Length(min=1, max=5),
        metadata={"description": "Separates bare category codes in one value (codes format)"},
    )
    category_columns = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1)),
        values=fields.String(validate=validate.Length(min=1)),
        load_default=dict,
        metadata={"description": "category code -> column (element) marking that the "
                                 "operator holds it"},
    )
    tier_column = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1),
        metadata={"description": "column (element) holding the tier of the categories read "
                                 "as bare codes or from category_columns"},
    )
    identifier_columns = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1)),
        values=fields.String(validate=validate.Length(min=1)),
        load_default=dict,
        metadata={"description": "identifier scheme -> column (element) holding it"},
    )
    key = fields.List(
        fields.String(validate=validate.OneOf(_SCALAR_FIELDS)),
        load_default=None, allow_none=True, validate=validate.Length(min=1),
        metadata={"description": "fields a stable key is derived from when the source has "
                                 "no identifier (scheme DERIVED)"},
    )

    @validates_schema
    def _consistent(self, data: Mapping[str, Any], **_kwargs: Any) -> None:
        defaults = data.get("defaults") or {}
        for name, value in defaults.items():
            if value is not None and not isinstance(value, str | bool):
                raise ValidationError({"defaults": {name: ["expected text or true/false"]}})
        if data.get("category_columns") and data.get("categories_format") == "codes":
            raise ValidationError({"category_columns": [
                "give either category_columns or categories_format codes, not both"]})
        if data.get("tier_column") and not (data.get("category_columns")
                                            or data.get("categories_format") == "codes"):
            raise ValidationError({"tier_column": [
                "a tier column goes with categories read as bare codes or from "
                "category_columns; entries carry their own tier (code:status:since:tier)"]})


class ValueMapper:
    """Applies one connection's mapping settings to the records its connector reads."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.maps: dict[str, dict[str, str]] = {
            fld: {_norm(k): v for k, v in table.items()}
            for fld, table in (config.get("values") or {}).items()
        }
        self.defaults: dict[str, Any] = dict(config.get("defaults") or {})
        self.codes = config.get("categories_format", "entries") == "codes"
        self.codes_separator: str = config.get("codes_separator") or "/"
        self.category_columns: dict[str, str] = dict(config.get("category_columns") or {})
        self.identifier_columns: dict[str, str] = dict(config.get("identifier_columns") or {})
        self.tier_column: str | None = config.get("tier_column") or None
        self.key: list[str] | None = config.get("key") or None
        # Part of every record's fingerprint: a changed mapping must re-validate records
        # the hub would otherwise skip as unchanged.
        self.salt = fingerprint_json([
            sorted((k, sorted(v.items())) for k, v in (config.get("values") or {}).items()),
            sorted((k, str(v)) for k, v in self.defaults.items()), self.codes,
            self.codes_separator, sorted(self.category_columns.items()),
            sorted(self.identifier_columns.items()), self.key, self.tier_column])
        self.active = bool(self.maps or self.defaults or self.codes or self.category_columns
                           or self.identifier_columns or self.key)
        # The connection's programme and scheme are defaults too, given after the maps
        # (they are canonical already, so a map of source values never applies to them).
        for fld in ("programme", "trader_id_scheme"):
            if config.get(fld) and fld not in self.defaults:
                self.defaults[fld] = config[fld]

    # -- what the connector must read besides the canonical fields ----------------------

    @property
    def source_names(self) -> list[str]:
        """Columns (elements) read by ``category_columns``, ``tier_column`` and
        ``identifier_columns``."""
        tier = [self.tier_column] if self.tier_column else []
        return [*self.category_columns.values(), *tier, *self.identifier_columns.values()]

    @property
    def optional_fields(self) -> frozenset[str]:
        """Canonical fields a source need not have because a setting supplies them."""
        out = set(self.defaults)
        if self.key:
            out |= {"trader_id", "trader_id_scheme"}
        return frozenset(out)

    # -- single values --------------------------------------------------------------------

    def value(self, fld: str, raw: Any, position: str | None, problems: list[str]) -> Any:
        """``raw`` through ``values[fld]`` (as read when ``fld`` has no map)."""
        table = self.maps.get(fld)
        if table is None or raw is None or not isinstance(raw, str):
            return raw
        key = _norm(raw)
        if not key:
            return None
        try:
            return table[key]
        except KeyError:
            where = f"{position}: " if position else ""
            problems.append(f"{where}{fld} {raw.strip()!r} is not in values.{fld} "
                            f"(it maps {_listed(table)})")
            return raw

    def programme(self, raw: str | None) -> str | None:
        """The programme of a raw value, as `apply` will give it (no problems)."""
        mapped = self.value("programme", raw, None, []) if raw else None
        if mapped is None:
            default = self.defaults.get("programme")
            return default if isinstance(default, str) else None
        return mapped if isinstance(mapped, str) else None

    # -- the whole record -----------------------------------------------------------------

    def apply(self, record: CanonicalRecord,
              extra: Mapping[str, Sequence[str | None]] | None = None) -> CanonicalRecord:
        """``record`` with the mapping applied. ``extra`` holds the raw values of
        `source_names` (and of the categories under `CATEGORY_TEXT` in codes format)."""
        if not self.active:
            return record
        extra = extra or {}
        problems = list(record.problems)
        position = record.position
        changes: dict[str, Any] = {}
        for fld, default in self.defaults.items():
            if getattr(record, fld) is None:
                changes[fld] = default
        for fld in ("programme", "trader_id_scheme", "status", "country"):
            current = changes.get(fld, getattr(record, fld))
            if fld in self.maps and current is not None and fld not in changes:
                changes[fld] = self.value(fld, current, position, problems)
        for fld in ("consent_share", "consent_publish"):
            current = changes.get(fld, getattr(record, fld))
            if fld in self.maps and isinstance(current, str) and fld not in changes:
                current = self.value(fld, current, position, problems)
            changes[fld] = as_bool(current) if isinstance(current, str) else current
        status = changes.get("status", record.status)
        since = (changes.get("status_effective", record.status_effective)
                 or changes.get("authorised_on", record.authorised_on))
        changes["categories"] = self._categories(record, extra, status, since, problems)
        changes["identifiers"] = self._identifiers(record, extra, problems)
        if self.key:
            merged = dataclasses.replace(record, **changes)
            changes["trader_id_scheme"] = DERIVED_SCHEME
            changes["trader_id"] = self._derived_key(merged, problems)
        changes["problems"] = tuple(problems)
        return dataclasses.replace(record, **changes)

    def _categories(self, record: CanonicalRecord, extra: Mapping[str, Sequence[str | None]],
                    status: str | None, since: str | None,
                    problems: list[str]) -> tuple[CategoryEntry, ...]:
        position = record.position
        codes: list[str] = []
        if self.codes:
            for text in extra.get(CATEGORY_TEXT, ()):
                codes.extend(c.strip() for c in (text or "").split(self.codes_separator)
                             if c.strip())
        for code, column in self.category_columns.items():
            for cell in extra.get(column, ()):
                held = as_bool(cell)
                if held is not None and held is not False:
                    codes.append(code)
                    break
        derived = self.codes or bool(self.category_columns)
        tier = None
        if derived and self.tier_column:
            raw = next((c for c in extra.get(self.tier_column, ())
                        if isinstance(c, str) and c.strip()), None)
            tier = self.value("tier", raw.strip() if raw else None, position, problems)
        entries = ([CategoryEntry(code=code, status=status, since=since, tier=tier)
                    for code in codes] if derived else list(record.categories))
        out: list[CategoryEntry] = []
        for entry in entries:
            code = self.value("categories", entry.code, position, problems)
            # a derived entry carries the operator's status and tier, already mapped
            entry_status, entry_tier = (entry.status, entry.tier) if derived else (
                self.value("status", entry.status, position, problems),
                self.value("tier", entry.tier, position, problems))
            out.append(CategoryEntry(code=code, status=entry_status, since=entry.since,
                                     tier=entry_tier))
        return tuple(out)

    def _identifiers(self, record: CanonicalRecord, extra: Mapping[str, Sequence[str | None]],
                     problems: list[str]) -> tuple[IdentifierEntry, ...]:
        out = [dataclasses.replace(
            ident, scheme=self.value("identifier_scheme", ident.scheme, record.position,
                                     problems)) for ident in record.identifiers]
        for scheme, column in self.identifier_columns.items():
            for cell in extra.get(column, ()):
                value = cell.strip() if isinstance(cell, str) else None
                if value:
                    out.append(IdentifierEntry(scheme=scheme, value=value))
        return tuple(out)

    def _derived_key(self, record: CanonicalRecord, problems: list[str]) -> str | None:
        assert self.key is not None
        parts: list[str] = []
        empty: list[str] = []
        for fld in self.key:
            value = getattr(record, fld)
            text = " ".join(str(value).split()).casefold() if value is not None else ""
            if not text:
                empty.append(fld)
            parts.append(text)
        if empty:
            where = f"{record.position}: " if record.position else ""
            problems.append(f"{where}the derived key lacks {', '.join(empty)} (key: "
                            f"{', '.join(self.key)})")
            return None
        digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=12)
        return digest.hexdigest().upper()


def _listed(table: Mapping[str, str]) -> str:
    """The source values of a map, for a message (at most ten)."""
    keys = sorted(table)
    shown = ", ".join(repr(k) for k in keys[:10])
    return shown + (f" and {len(keys) - 10} more" if len(keys) > 10 else "") if keys \
        else "nothing"


def unmapped_value(problem: str) -> tuple[str, str] | None:
    """(field, value) when ``problem`` says a value is missing from a map, else None."""
    found = _UNMAPPED.search(problem)
    if found is None:
        return None
    raw = found.group("value")
    return found.group("field"), raw[1:-1]


class Unread:
    """Source columns that hold data and that no setting reads.

    ``candidates`` are the columns nothing reads; `see` is given each row's values of
    them (by position in ``candidates``) until all have shown data.
    """

    def __init__(self, candidates: Iterable[str]) -> None:
        self.candidates = list(candidates)
        self._pending = set(range(len(self.candidates)))
        self.found: set[str] = set()

    def see(self, values: Sequence[Any]) -> None:
        """Note the candidates that hold data in this row (``values`` aligned)."""
        if not self._pending:
            return
        for i in list(self._pending):
            if i < len(values):
                value = values[i]
                if value is not None and (not isinstance(value, str) or value.strip()):
                    self._pending.discard(i)
                    self.found.add(self.candidates[i])

    def see_name(self, name: str) -> None:
        """Note one candidate by name (sources whose rows are not aligned, such as XML)."""
        self.found.add(name)

    @property
    def names(self) -> list[str]:
        """The columns seen holding data, in source order."""
        order = {name: i for i, name in enumerate(self.candidates)}
        return sorted(self.found, key=lambda n: (order.get(n, len(order)), n))


def unread_state(unread: Unread) -> dict[str, Any]:
    """What a batch's state says of unread columns: ``{"unread": [...]}`` when any held
    data so far (kept with the run, and read by ``aeohub connectors check``)."""
    names = unread.names
    return {"unread": names} if names else {}


def report_unread(log: logging.Logger, connector: str, unread: Unread) -> None:
    """Log, once per read, the columns that held data nobody reads."""
    if unread.names:
        log.warning("%s: columns with data that no setting reads: %s", connector,
                    ", ".join(unread.names))
