"""Validate and normalise canonical records into registry data.

A marshmallow schema checks the record's shape and vocabulary; the identifier rules
(`hub.identifiers`) check and normalise the trader identifier, the stable key and the
other identifiers. Every problem is collected (never only the first) so that a
quarantined record carries all its reasons. Breaches of stricter, unsourced identifier
rules are warnings carried with the record, never rejections.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    pre_load,
    validate,
    validates_schema,
)
from marshmallow.utils import from_iso_date, from_iso_datetime

from connectors.base import CanonicalRecord, CategoryEntry, IdentifierEntry
from hub.errors import flatten_messages
from hub.identifiers import IdentifierError, Scheme, Validated, get_scheme
from hub.identifiers import is_known_scheme as _is_scheme
from hub.registry.models import STATUSES
from hub.registry.service import OperatorData

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


class _Flag(fields.Field):
    """A boolean given as a bool or as one of the usual spellings."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValidationError(f"{value!r} is not a yes/no value")


class CategorySchema(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=32))
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    since = fields.Date(load_default=None, allow_none=True)


class IdentifierSchema(Schema):
    scheme = fields.String(required=True, validate=validate.Length(min=1, max=32))
    value = fields.String(required=True, validate=validate.Length(min=1, max=64))
    linked = fields.Boolean(load_default=False)


class RecordSchema(Schema):
    """The shape and vocabulary of a record; identifier rules are checked afterwards."""

    class Meta:
        unknown = EXCLUDE

    programme = fields.String(required=True)
    authorisation_number = fields.String(required=True, validate=validate.Length(min=1, max=64))
    trader_id_scheme = fields.String(required=True)
    trader_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    legal_name = fields.String(required=True, validate=validate.Length(min=1, max=300))
    street = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=300))
    city = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=120))
    postcode = fields.String(load_default=None, allow_none=True,
                             validate=validate.Length(max=32))
    region = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))
    country = fields.String(required=True, validate=validate.Regexp(
        r"^[A-Z]{2}$", error="must be an ISO 3166 alpha-2 country code"))
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    status_effective = fields.Date(load_default=None, allow_none=True)
    categories = fields.List(fields.Nested(CategorySchema), load_default=list)
    authorised_on = fields.Date(load_default=None, allow_none=True)
    valid_from = fields.Date(load_default=None, allow_none=True)
    valid_until = fields.Date(load_default=None, allow_none=True)
    issuing_authority = fields.String(load_default=None, allow_none=True,
                                      validate=validate.Length(max=200))
    identifiers = fields.List(fields.Nested(IdentifierSchema), load_default=list)
    consent_share = _Flag(load_default=False, allow_none=True)
    consent_publish = _Flag(load_default=False, allow_none=True)
    changed_at = fields.AwareDateTime(load_default=None, allow_none=True,
                                      default_timezone=dt.UTC)

    @pre_load
    def _upper_country(self, data: dict[str, Any], **_kw: Any) -> dict[str, Any]:
        if isinstance(data.get("country"), str):
            data["country"] = data["country"].strip().upper()
        if isinstance(data.get("status"), str):
            data["status"] = data["status"].strip().lower()
        return data

    @validates_schema
    def _dates_in_order(self, data: dict[str, Any], **_kw: Any) -> None:
        start, end = data.get("valid_from"), data.get("valid_until")
        if start and end and end < start:
            raise ValidationError("valid_until is before valid_from", "valid_until")


_SCHEMA = RecordSchema()

# -- the fast path ---------------------------------------------------------------------
# `fast_load` applies RecordSchema's rules in plain Python to the common, valid record and
# returns exactly what `_SCHEMA.load` would; for anything it does not accept (a wrong type,
# a missing or empty required value, a bad date, an unknown status, ...) it returns None and
# the caller asks marshmallow, so every rejection still carries marshmallow's messages.
# tests/sync/test_sync_fast_validation.py checks the two agree on generated records.

_COUNTRY = re.compile(r"^[A-Z]{2}$")  # RecordSchema.country's Regexp
_STATUS_SET = frozenset(STATUSES)
_FLAG_VALUES = {**dict.fromkeys(_TRUE, True), **dict.fromkeys(_FALSE, False)}
# (name, min length, max length) of the required strings
_REQUIRED_TEXT = (("programme", 0, None), ("authorisation_number", 1, 64),
                  ("trader_id_scheme", 0, None), ("trader_id", 1, 64),
                  ("legal_name", 1, 300))
_OPTIONAL_TEXT = (("street", 300), ("city", 120), ("postcode", 32), ("region", 64),
                  ("issuing_authority", 200))
_DATE_NAMES = ("status_effective", "authorised_on", "valid_from", "valid_until")
_CATEGORY_KEYS = frozenset({"code", "status", "since"})
_IDENTIFIER_KEYS = frozenset({"scheme", "value", "linked"})
_CACHE_LIMIT = 8192
_UTC_SECONDS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_date_cache: dict[str, dt.date] = {}
_datetime_cache: dict[str, dt.datetime] = {}


_schemes: dict[str, Scheme | None] = {}


def _scheme(code: str) -> Scheme | None:
    """The scheme named `code` (None: unknown), looked up once per spelling."""
    try:
        return _schemes[code]
    except KeyError:
        found = get_scheme(code) if _is_scheme(code) else None
        if len(_schemes) < _CACHE_LIMIT:
            _schemes[code] = found
        return found


def is_known_scheme(code: str) -> bool:
    return _scheme(code) is not None


def validate_identifier(code: str, value: object) -> Validated:
    """`hub.identifiers.validate` (the scheme table never changes, so its look-up is kept)."""
    scheme = _scheme(code)
    if scheme is None:
        scheme = get_scheme(code)  # raises the unknown-scheme error
    return scheme.validate(value)


class _Refuse(Exception):
    """The fast path does not accept this value; marshmallow decides."""


def _date(value: Any) -> dt.date | None:
    """fields.Date(allow_none=True) for a str or None."""
    if value is None:
        return None
    if type(value) is not str:
        raise _Refuse
    cached = _date_cache.get(value)
    if cached is None:
        try:
            cached = from_iso_date(value)
        except (TypeError, ValueError):
            raise _Refuse from None
        if len(_date_cache) >= _CACHE_LIMIT:
            _date_cache.clear()
        _date_cache[value] = cached
    return cached


def _aware_datetime(value: Any) -> dt.datetime | None:
    """fields.AwareDateTime(default_timezone=UTC, allow_none=True) for a str or None."""
    if value is None:
        return None
    if type(value) is not str:
        raise _Refuse
    cached = _datetime_cache.get(value)
    if cached is None and _UTC_SECONDS.fullmatch(value):
        # The common form, "2024-02-20T16:24:46Z": what from_iso_datetime returns for it,
        # at a twentieth of the cost (changed_at is different on nearly every record).
        try:
            return dt.datetime.fromisoformat(value)  # Python 3.11 reads "Z" as UTC
        except ValueError:
            raise _Refuse from None
    if cached is None:
        try:
            parsed = from_iso_datetime(value)
        except (TypeError, ValueError, OverflowError):
            raise _Refuse from None
        if parsed.tzinfo is None or parsed.tzinfo.utcoffset(parsed) is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        if len(_datetime_cache) >= _CACHE_LIMIT:
            _datetime_cache.clear()
        _datetime_cache[value] = cached = parsed
    return cached


def _flag(raw: Mapping[str, Any], name: str) -> bool | None:
    """_Flag(load_default=False, allow_none=True)."""
    if name not in raw:
        return False
    value = raw[name]
    if value is None or type(value) is bool:
        return value
    if type(value) is not str:
        raise _Refuse
    flag = _FLAG_VALUES.get(value.strip().lower())
    if flag is None:
        raise _Refuse
    return flag


def _text(value: Any, low: int, high: int | None) -> str:
    if type(value) is not str or len(value) < low or (high is not None and len(value) > high):
        raise _Refuse
    return value


def _items(value: Any, keys: frozenset[str]) -> Iterator[dict[str, Any]]:
    """The dicts of a list (or tuple) whose keys are among `keys`; refuses anything else."""
    if type(value) is not list and type(value) is not tuple:
        raise _Refuse
    for item in value:
        if type(item) is not dict or not item.keys() <= keys:
            raise _Refuse
        yield item


def _categories(value: Any) -> list[dict[str, Any]]:
    out = []
    for item in _items(value, _CATEGORY_KEYS):
        code, status = item.get("code"), item.get("status")
        if (type(code) is not str or not 1 <= len(code) <= 32 or type(status) is not str
                or status not in _STATUS_SET):
            raise _Refuse
        out.append({"code": code, "status": status, "since": _date(item.get("since"))})
    return out


def _identifiers(value: Any) -> list[dict[str, Any]]:
    out = []
    for item in _items(value, _IDENTIFIER_KEYS):
        scheme, ident, linked = item.get("scheme"), item.get("value"), item.get("linked", False)
        if (type(scheme) is not str or not 1 <= len(scheme) <= 32 or type(ident) is not str
                or not 1 <= len(ident) <= 64 or type(linked) is not bool):
            raise _Refuse
        out.append({"scheme": scheme, "value": ident, "linked": linked})
    return out


def _upper_country_lower_status(raw: dict[str, Any]) -> None:
    """RecordSchema's pre_load, which marshmallow applies to the raw dict in place."""
    if isinstance(raw.get("country"), str):
        raw["country"] = raw["country"].strip().upper()
    if isinstance(raw.get("status"), str):
        raw["status"] = raw["status"].strip().lower()


def fast_load(raw: dict[str, Any]) -> dict[str, Any] | None:
    """What `RecordSchema().load(raw)` returns, or None to let marshmallow decide.

    Like marshmallow's pre_load, upper-cases the country and lower-cases the status of
    `raw` in place.
    """
    _upper_country_lower_status(raw)
    try:
        data: dict[str, Any] = {}
        for name, low, high in _REQUIRED_TEXT:
            data[name] = _text(raw.get(name), low, high)
        for name, high in _OPTIONAL_TEXT:
            value = raw.get(name)
            if value is not None:
                _text(value, 0, high)
            data[name] = value
        country = raw.get("country")
        if type(country) is not str or not _COUNTRY.match(country):
            return None
        data["country"] = country
        status = raw.get("status")
        if type(status) is not str or status not in _STATUS_SET:
            return None
        data["status"] = status
        for name in _DATE_NAMES:
            data[name] = _date(raw.get(name))
        data["categories"] = _categories(raw["categories"]) if "categories" in raw else []
        data["identifiers"] = (_identifiers(raw["identifiers"]) if "identifiers" in raw
                               else [])
        data["consent_share"] = _flag(raw, "consent_share")
        data["consent_publish"] = _flag(raw, "consent_publish")
        data["changed_at"] = _aware_datetime(raw.get("changed_at"))
    except _Refuse:
        return None
    start, end = data["valid_from"], data["valid_until"]
    if start and end and end < start:
        return None
    return data


def _flag_value(value: Any) -> bool | None:
    """`_flag` of a value that is present."""
    if value is None or type(value) is bool:
        return value
    if type(value) is not str:
        raise _Refuse
    flag = _FLAG_VALUES.get(value.strip().lower())
    if flag is None:
        raise _Refuse
    return flag


def schema_load(raw: dict[str, Any]) -> dict[str, Any]:
    """RecordSchema's load: the fast path, else marshmallow (raises ValidationError)."""
    data = fast_load(raw)
    if data is None:
        data = _SCHEMA.load(raw)
    return data


@dataclass(frozen=True)
class ProgrammeRules:
    """What validation needs to know of a programme (plain data, cheap to pass around)."""

    code: str
    primary_scheme: str
    stable_key_scheme: str
    authorisation_scheme: str | None
    categories: frozenset[str]


@dataclass
class Rejection:
    """A record refused with every reason, and the stable key when it could be read."""

    reasons: list[dict[str, str]]
    stable_key: str | None


def record_to_dict(record: CanonicalRecord) -> dict[str, Any]:
    """The record as plain JSON-able data (for validation, staging and quarantine)."""
    data = {name: getattr(record, name) for name in CanonicalRecord.__slots__
            if name not in ("categories", "identifiers", "problems")}
    data["categories"] = [{"code": c.code, "status": c.status, "since": c.since}
                          for c in record.categories]
    data["identifiers"] = [{"scheme": i.scheme, "value": i.value, "linked": i.linked}
                           for i in record.identifiers]
    data["problems"] = list(record.problems)
    return data


def _normalise_loose(scheme: str, value: str) -> str:
    return "".join(value.split()).upper()


def _stable_key(rules: ProgrammeRules, trader_scheme: str, trader_id: str,
                identifiers: list[tuple[str, str, str, bool]], authorisation: str) -> str | None:
    if rules.stable_key_scheme == trader_scheme:
        return trader_id
    for scheme, value, _origin, _linked in identifiers:
        if scheme == rules.stable_key_scheme:
            return value
    if rules.stable_key_scheme == rules.authorisation_scheme:
        return authorisation
    return None


def stable_key_of(raw: Mapping[str, Any], rules: ProgrammeRules) -> str | None:
    """The stable key of a raw record when it can be read (for tombstones, duplicates)."""
    scheme = raw.get("trader_id_scheme")
    value = raw.get("trader_id")
    if scheme == rules.stable_key_scheme and isinstance(value, str):
        try:
            return validate_identifier(scheme, value).value
        except IdentifierError:
            return _normalise_loose(scheme, value)
    for ident in raw.get("identifiers") or []:
        if ident.get("scheme") == rules.stable_key_scheme and ident.get("value"):
            try:
                return validate_identifier(rules.stable_key_scheme, ident["value"]).value
            except IdentifierError:
                return _normalise_loose(rules.stable_key_scheme, ident["value"])
    return None


def validate_canonical(record: CanonicalRecord, rules: ProgrammeRules) -> OperatorData | None:
    """`validate_record(record_to_dict(record), rules)` for a record that passes: the same
    registry data, read straight from the record's attributes in one pass (no dict of the
    record, no loaded form in between). None when the record has problems or would be
    rejected, or holds anything unusual: the caller then runs `validate_record`, which
    gives every reason."""
    if record.problems:
        return None
    try:
        return _accept_canonical(record, rules)
    except (_Refuse, IdentifierError):
        return None


def _category_values(record: CanonicalRecord, allowed: frozenset[str]
                     ) -> list[dict[str, Any]]:
    """The record's categories as validation stores them (sorted by code), or _Refuse."""
    categories = []
    codes = set()
    for category in record.categories:
        if type(category) is not CategoryEntry:
            raise _Refuse
        code, state = category.code, category.status
        if (type(code) is not str or not 1 <= len(code) <= 32 or type(state) is not str
                or state not in _STATUS_SET or code not in allowed or code in codes):
            raise _Refuse
        codes.add(code)
        since = _date(category.since)
        categories.append({"code": code, "status": state,
                           "since": since.isoformat() if since else None})
    if len(categories) > 1:
        categories.sort(key=itemgetter("code"))
    return categories


def _identifier_values(record: CanonicalRecord,
                       identifiers: list[tuple[str, str, str, bool]]) -> None:
    """Append the record's other identifiers, validated and without repeats, to
    `identifiers` (which holds the trader's own); _Refuse or IdentifierError else."""
    if not record.identifiers:
        return
    seen = {i[:3] for i in identifiers}
    for ident in record.identifiers:
        if type(ident) is not IdentifierEntry:
            raise _Refuse
        scheme, value, linked = ident.scheme, ident.value, ident.linked
        if (type(scheme) is not str or not 1 <= len(scheme) <= 32 or type(value) is not str
                or not 1 <= len(value) <= 64 or type(linked) is not bool):
            raise _Refuse
        scheme = scheme.upper()
        if not is_known_scheme(scheme):
            raise _Refuse  # kept with a warning: `validate_record` words it
        value = validate_identifier(scheme, value).value
        if (scheme, value, "declared") not in seen:
            seen.add((scheme, value, "declared"))
            identifiers.append((scheme, value, "declared", linked or scheme != "MID"))


def _accept_canonical(record: CanonicalRecord, rules: ProgrammeRules) -> OperatorData | None:
    """`_check_loaded` of what RecordSchema loads from the record, for a record both
    accept; raises _Refuse (or IdentifierError) wherever either would not."""
    if record.programme != rules.code or record.trader_id_scheme != rules.primary_scheme:
        raise _Refuse
    authorisation_number = _text(record.authorisation_number, 1, 64)
    trader = _text(record.trader_id, 1, 64)
    legal_name = _text(record.legal_name, 1, 300)
    for name, high in _OPTIONAL_TEXT:
        value = getattr(record, name)
        if value is not None:
            _text(value, 0, high)
    country, status = record.country, record.status
    if type(country) is not str or type(status) is not str:
        raise _Refuse
    country, status = country.strip().upper(), status.strip().lower()
    if not _COUNTRY.match(country) or status not in _STATUS_SET:
        raise _Refuse
    valid_from, valid_until = _date(record.valid_from), _date(record.valid_until)
    if valid_from and valid_until and valid_until < valid_from:
        raise _Refuse
    checked = validate_identifier(rules.primary_scheme, trader)
    trader_id = checked.value
    warnings = [{"field": "trader_id", "rule": w.rule, "message": w.message}
                for w in checked.warnings]
    authorisation = "".join(authorisation_number.split()).upper()
    if rules.authorisation_scheme and is_known_scheme(rules.authorisation_scheme):
        authorisation = validate_identifier(rules.authorisation_scheme,
                                            authorisation_number).value
    identifiers = [(rules.primary_scheme, trader_id, "declared", True)]
    _identifier_values(record, identifiers)
    stable_key = _stable_key(rules, rules.primary_scheme, trader_id, identifiers,
                             authorisation)
    if stable_key is None:
        raise _Refuse
    values = {
        "authorisation_number": authorisation,
        "trader_id_scheme": rules.primary_scheme,
        "trader_id": trader_id,
        "legal_name": legal_name.strip(),
        "street": record.street,
        "city": record.city,
        "postcode": record.postcode,
        "region": record.region,
        "country": country,
        "status": status,
        "status_effective": _date(record.status_effective),
        "categories": _category_values(record, rules.categories),
        "issuing_authority": record.issuing_authority,
        "authorised_on": _date(record.authorised_on),
        "valid_from": valid_from,
        "valid_until": valid_until,
        "consent_share": bool(_flag_value(record.consent_share)),
        "consent_publish": bool(_flag_value(record.consent_publish)),
        "source_changed_at": _aware_datetime(record.changed_at),
        "fingerprint": record.fingerprint or None,
        "warnings": warnings,
    }
    return OperatorData(stable_key=stable_key, values=values, identifiers=identifiers)


def validate_record(raw: dict[str, Any], rules: ProgrammeRules) -> OperatorData | Rejection:
    """Validate one record; return registry data or a rejection with every reason."""
    reasons: list[dict[str, str]] = [
        {"field": "(record)", "reason": problem} for problem in raw.get("problems") or []
    ]
    try:
        data = schema_load(raw)
    except ValidationError as exc:
        for field_name, messages in flatten_messages(exc.messages).items():
            reasons.extend({"field": field_name, "reason": m} for m in messages)
        data = None
    return _check_loaded(data, reasons, raw, raw.get("fingerprint") or None, rules)


def _check_loaded(data: dict[str, Any] | None, reasons: list[dict[str, str]],
                  raw: Mapping[str, Any] | None, fingerprint: str | None,
                  rules: ProgrammeRules) -> OperatorData | Rejection:
    """Apply the identifier and programme rules to loaded data (None: it did not load).
    A rejection reads the stable key from `raw` when the data gave none."""
    warnings: list[dict[str, str]] = []
    trader_id: str | None = None
    identifiers: list[tuple[str, str, str, bool]] = []
    authorisation = ""
    if data is not None:
        if data["programme"] != rules.code:
            reasons.append({"field": "programme",
                            "reason": f"{data['programme']!r} is not this connection's "
                                      f"programme {rules.code}"})
        if data["trader_id_scheme"] != rules.primary_scheme:
            reasons.append({"field": "trader_id_scheme",
                            "reason": f"{rules.code} identifies traders by "
                                      f"{rules.primary_scheme}, not "
                                      f"{data['trader_id_scheme']}"})
        else:
            try:
                checked = validate_identifier(rules.primary_scheme, data["trader_id"])
                trader_id = checked.value
                warnings.extend({"field": "trader_id", "rule": w.rule, "message": w.message}
                                for w in checked.warnings)
            except IdentifierError as exc:
                reasons.append({"field": "trader_id", "reason": str(exc)})
        authorisation = "".join(data["authorisation_number"].split()).upper()
        if rules.authorisation_scheme and is_known_scheme(rules.authorisation_scheme):
            try:
                authorisation = validate_identifier(rules.authorisation_scheme,
                                                    data["authorisation_number"]).value
            except IdentifierError as exc:
                reasons.append({"field": "authorisation_number", "reason": str(exc)})
        for index, category in enumerate(data["categories"]):
            if category["code"] not in rules.categories:
                reasons.append({"field": f"categories.{index}.code",
                                "reason": f"{category['code']!r} is not a category of "
                                          f"{rules.code} ({', '.join(sorted(rules.categories))})"})
        codes = [c["code"] for c in data["categories"]]
        if len(set(codes)) != len(codes):
            reasons.append({"field": "categories", "reason": "a category is listed twice"})
        if trader_id is not None:
            identifiers.append((rules.primary_scheme, trader_id, "declared", True))
        for index, ident in enumerate(data["identifiers"]):
            scheme = ident["scheme"].upper()
            if is_known_scheme(scheme):
                try:
                    value = validate_identifier(scheme, ident["value"]).value
                except IdentifierError as exc:
                    reasons.append({"field": f"identifiers.{index}.value", "reason": str(exc)})
                    continue
            else:
                value = _normalise_loose(scheme, ident["value"])
                warnings.append({"field": f"identifiers.{index}.scheme", "rule": "unknown",
                                 "message": f"identifier scheme {scheme} is not known to "
                                            "the hub; kept as given"})
            entry = (scheme, value, "declared", bool(ident["linked"]) or scheme != "MID")
            if entry[:3] not in {i[:3] for i in identifiers}:
                identifiers.append(entry)
    stable_key = None
    if data is not None and trader_id is not None:
        stable_key = _stable_key(rules, rules.primary_scheme, trader_id, identifiers,
                                 authorisation)
        if stable_key is None:
            reasons.append({"field": rules.stable_key_scheme,
                            "reason": f"the record has no {rules.stable_key_scheme}, the "
                                      f"stable key of {rules.code}"})
    if reasons or data is None or stable_key is None:
        if not stable_key and raw is not None:
            stable_key = stable_key_of(raw, rules)
        return Rejection(reasons, stable_key)
    categories = sorted(
        ({"code": c["code"], "status": c["status"],
          "since": c["since"].isoformat() if c["since"] else None} for c in data["categories"]),
        key=lambda c: c["code"],
    )
    values = {
        "authorisation_number": authorisation,
        "trader_id_scheme": rules.primary_scheme,
        "trader_id": trader_id,
        "legal_name": data["legal_name"].strip(),
        "street": data["street"],
        "city": data["city"],
        "postcode": data["postcode"],
        "region": data["region"],
        "country": data["country"],
        "status": data["status"],
        "status_effective": data["status_effective"],
        "categories": categories,
        "issuing_authority": data["issuing_authority"],
        "authorised_on": data["authorised_on"],
        "valid_from": data["valid_from"],
        "valid_until": data["valid_until"],
        "consent_share": bool(data["consent_share"]),
        "consent_publish": bool(data["consent_publish"]),
        "source_changed_at": data["changed_at"],
        "fingerprint": fingerprint,
        "warnings": warnings,
    }
    return OperatorData(stable_key=stable_key, values=values, identifiers=identifiers)
