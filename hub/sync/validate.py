"""The one record validator: a canonical record in, registry data or every reason out.

Plain Python over `connectors.base.CanonicalRecord` with the identifier rules of
`hub.identifiers`. Every problem is collected (never only the first), each with a reason
code, the field and a sentence; the connector's own problems come first, then the fields
in the record's order, so the first reason names the real problem. Breaches of stricter,
unsourced identifier rules are warnings carried with the record, never rejections.

A rejection carries what can tie the record to an operator the hub already holds (its
stable key, authorisation number and other identifiers, read loosely), so that a bad row
never changes or removes a good operator (`hub.sync.engine`).

A record whose connector derived its key from other fields (scheme `DERIVED`, a source
with no identifier) is accepted with that key as its stable key and trader id, without an
authorisation number, and with no identifier of the programme's own scheme: such an
operator is found by name and address only.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.base import CanonicalRecord, CategoryEntry, IdentifierEntry
from connectors.mapping import DERIVED_SCHEME
from hub.identifiers import IdentifierError, get_scheme, is_known_scheme
from hub.identifiers.countries import ADDRESS_COUNTRIES
from hub.registry.models import STATUSES, Programme
from hub.registry.service import OperatorData

_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})
# Lone surrogates: bytes a connector could not decode in the source's encoding.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# Those, C0 controls and DEL other than tab, newline and carriage return (PostgreSQL
# text cannot hold NUL at all, and the others are never part of a name or an address),
# and U+FFFD, which marks characters lost to a decoder before (or when) the hub read them.
_UNFIT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffd]")
#: The longest value a quarantined record keeps of one field (the rest is cut, said so).
SHOWN_LIMIT = 1000

# (field, required, max length) of the record's text fields, in the record's order
_TEXT_FIELDS = (
    ("authorisation_number", True, 64),
    ("trader_id", True, 64),
    ("legal_name", True, 300),
    ("street", False, 300),
    ("city", False, 120),
    ("postcode", False, 32),
    ("region", False, 64),
    ("issuing_authority", False, 200),
)
_DATE_FIELDS = ("status_effective", "authorised_on", "valid_from", "valid_until")


@dataclass(frozen=True)
class ProgrammeRules:
    """What validation needs to know of a programme."""

    code: str
    primary_scheme: str
    stable_key_scheme: str
    authorisation_scheme: str | None
    categories: frozenset[str]
    tiers: frozenset[str] = frozenset()  # a component's tier, where the programme has tiers

    @functools.cached_property
    def category_spelling(self) -> dict[str, str]:
        """Each category code by its upper-case form (codes compare case-insensitively and
        are stored as the programme spells them: `AEOF`, `importer`)."""
        return {code.upper(): code for code in self.categories}

    @classmethod
    def of(cls, programme: Programme) -> ProgrammeRules:
        tiers = (programme.details or {}).get("tiers") or ()
        return cls(programme.code, programme.primary_scheme, programme.stable_key_scheme,
                   programme.authorisation_scheme, frozenset(programme.category_codes()),
                   frozenset(str(t["code"]) for t in tiers))


@dataclass
class Rejection:
    """A record refused with every reason, and what may tie it to a known operator."""

    reasons: list[dict[str, str]]
    stable_key: str | None = None
    authorisation_number: str | None = None
    identifiers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def code(self) -> str:
        return self.reasons[0]["code"]


class _Problems:
    def __init__(self) -> None:
        self.reasons: list[dict[str, str]] = []

    def add(self, code: str, name: str, reason: str) -> None:
        self.reasons.append({"code": code, "field": name, "reason": reason})


def _text(problems: _Problems, name: str, value: Any, *, required: bool,
          limit: int) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            problems.add("missing", name, "a value is required")
        return None
    if not isinstance(value, str):
        problems.add("invalid_type", name, f"expected text, not {type(value).__name__}")
        return None
    if _UNFIT.search(value):
        if _SURROGATE.search(value):
            problems.add("undecodable", name,
                         "holds bytes that are not valid in the source's encoding")
        elif "\ufffd" in value:
            problems.add("undecodable", name,
                         "holds U+FFFD, the mark of characters lost in decoding")
        else:
            problems.add("control_characters", name,
                         "contains control characters (NUL or another C0 control)")
        return None
    if len(value) > limit:
        problems.add("too_long", name, f"{len(value):,} characters, more than the {limit} "
                                       "allowed")
        return None
    return value


def _date(problems: _Problems, name: str, value: Any) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    problems.add("invalid_date", name, f"{_shown(value)!r} is not a date (YYYY-MM-DD)")
    return None


def _timestamp(problems: _Problems, name: str, value: Any) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            parsed = None
        if parsed is not None:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            try:
                return parsed.astimezone(dt.UTC)
            except OverflowError:
                pass
    problems.add("invalid_timestamp", name,
                 f"{_shown(value)!r} is not an ISO 8601 time (2024-01-31T12:00:00Z)")
    return None


def _flag(problems: _Problems, name: str, value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE or text == "":
        return False
    problems.add("invalid_flag", name, f"{_shown(value)!r} is not a yes/no value")
    return False


def _shown(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _loose(value: Any) -> str | None:
    """An identifier's value without spaces or punctuation, upper-cased (for tying a
    rejected record to an operator: never stored as a valid identifier)."""
    if not isinstance(value, str):
        return None
    text = re.sub(r"[\s.\-/]", "", value).upper()
    return text[:64] or None


def _stable_key(rules: ProgrammeRules, trader_id: str | None,
                identifiers: list[tuple[str, str, str, bool]], authorisation: str | None
                ) -> str | None:
    if rules.stable_key_scheme == rules.primary_scheme:
        return trader_id
    for scheme, value, _origin, _linked in identifiers:
        if scheme == rules.stable_key_scheme:
            return value
    if rules.stable_key_scheme == rules.authorisation_scheme:
        return authorisation
    return None


def _identifier(problems: _Problems, name: str, scheme: str, value: Any
                ) -> tuple[str | None, list[dict[str, str]]]:
    """The normalised value of a known scheme, with its warnings; a problem when it is
    not valid."""
    try:
        checked = get_scheme(scheme).validate(value)
    except IdentifierError as exc:
        problems.add("invalid_identifier", name, str(exc))
        return None, []
    return checked.value, [{"field": name, "rule": w.rule, "message": w.message}
                           for w in checked.warnings]


def _format_problems(record: CanonicalRecord) -> _Problems:
    """The connector's own findings about the record as read: the real problem first."""
    problems = _Problems()
    for problem in record.problems:
        problems.add("format", "(record)", problem)
    return problems


def unknown_programme(record: CanonicalRecord, codes: Iterable[str]) -> list[dict[str, str]]:
    """Why a record of none of the connection's programmes (`codes`) is refused."""
    problems = _format_problems(record)
    problems.add("unknown_programme", "programme",
                 f"{safe_text(_shown(record.programme))!r} is not a programme of this "
                 f"connection ({', '.join(codes)})")
    return problems.reasons


def validate(record: CanonicalRecord, rules: ProgrammeRules) -> OperatorData | Rejection:
    """Validate and normalise one record of `rules`' programme."""
    problems = _format_problems(record)
    if record.programme is not None and record.programme != rules.code:
        problems.add("wrong_programme", "programme",
                     f"{_shown(record.programme)!r} is not this connection's programme "
                     f"{rules.code}")
    warnings: list[dict[str, str]] = []
    scheme = record.trader_id_scheme
    # A key the connector derived from other fields, for a source with no identifier
    # (`connectors.mapping`): it identifies the record across syncs and nothing else.
    derived = isinstance(scheme, str) and scheme.strip().upper() == DERIVED_SCHEME
    text = {name: _text(problems, name, getattr(record, name),
                        required=required and not (derived and name == "authorisation_number"),
                        limit=limit) for name, required, limit in _TEXT_FIELDS}

    trader_id = None
    if scheme is None or not str(scheme).strip():
        problems.add("missing", "trader_id_scheme", "a value is required")
    elif derived:
        trader_id = text["trader_id"].strip().upper() if text["trader_id"] else None
    elif str(scheme).strip().upper() != rules.primary_scheme:
        problems.add("wrong_scheme", "trader_id_scheme",
                     f"{rules.code} identifies traders by {rules.primary_scheme}, not "
                     f"{_shown(scheme)}")
    elif text["trader_id"] is not None:
        trader_id, found = _identifier(problems, "trader_id", rules.primary_scheme,
                                       text["trader_id"])
        warnings.extend(found)

    authorisation = "" if derived else None
    if text["authorisation_number"] is not None:
        authorisation = "".join(text["authorisation_number"].split()).upper()
        if rules.authorisation_scheme and is_known_scheme(rules.authorisation_scheme):
            authorisation, _ = _identifier(problems, "authorisation_number",
                                           rules.authorisation_scheme,
                                           text["authorisation_number"])

    country = record.country.strip().upper() if isinstance(record.country, str) else None
    if not country:
        problems.add("missing", "country", "a value is required")
    elif country not in ADDRESS_COUNTRIES:
        problems.add("invalid_country", "country",
                     f"{_shown(record.country)!r} is not an ISO 3166 alpha-2 country code")
    status = record.status.strip().lower() if isinstance(record.status, str) else None
    if not status:
        problems.add("missing", "status", "a value is required")
    elif status not in STATUSES:
        problems.add("invalid_status", "status",
                     f"{_shown(record.status)!r} is not a status ({', '.join(STATUSES)})")
    dates = {name: _date(problems, name, getattr(record, name)) for name in _DATE_FIELDS}
    if dates["valid_from"] and dates["valid_until"] and (
            dates["valid_until"] < dates["valid_from"]):
        problems.add("dates_out_of_order", "valid_until", "valid_until is before valid_from")

    categories = []
    codes: set[str] = set()
    for index, category in enumerate(record.categories):
        name = f"categories.{index}"
        if not isinstance(category, CategoryEntry):
            problems.add("invalid_type", name, "expected a category entry")
            continue
        given = category.code.strip().upper() if isinstance(category.code, str) else ""
        code = rules.category_spelling.get(given, given)
        state = category.status.strip().lower() if isinstance(category.status, str) else ""
        if code not in rules.categories:
            problems.add("unknown_category", f"{name}.code",
                         f"{_shown(category.code)!r} is not a category of {rules.code} "
                         f"({', '.join(sorted(rules.categories))})")
        elif code in codes:
            problems.add("repeated_category", f"{name}.code", f"{code} is listed twice")
        if state not in STATUSES:
            problems.add("invalid_status", f"{name}.status",
                         f"{_shown(category.status)!r} is not a status "
                         f"({', '.join(STATUSES)})")
        since = _date(problems, f"{name}.since", category.since)
        codes.add(code)
        entry = {"code": code, "status": state, "since": since.isoformat() if since else None}
        if category.tier is not None:
            tier = category.tier.strip().lower() if isinstance(category.tier, str) else ""
            if tier not in rules.tiers:
                problems.add("unknown_tier", f"{name}.tier",
                             f"{_shown(category.tier)!r} is not a tier of {rules.code} "
                             f"({', '.join(sorted(rules.tiers)) or 'it has none'})")
            entry["tier"] = tier
        categories.append(entry)
    categories.sort(key=lambda c: str(c["code"]))

    identifiers: list[tuple[str, str, str, bool]] = []
    if trader_id is not None and not derived:
        identifiers.append((rules.primary_scheme, trader_id, "declared", True))
    loose: list[tuple[str, str]] = []
    for index, ident in enumerate(record.identifiers):
        name = f"identifiers.{index}"
        if not isinstance(ident, IdentifierEntry):
            problems.add("invalid_type", name, "expected an identifier entry")
            continue
        ident_scheme = (ident.scheme or "").strip().upper()
        value = _text(problems, f"{name}.value", ident.value, required=True, limit=64)
        if not ident_scheme:
            problems.add("missing", f"{name}.scheme", "a value is required")
            continue
        if value is None:
            continue
        loose_value = _loose(value)
        if loose_value:
            loose.append((ident_scheme, loose_value))
        if is_known_scheme(ident_scheme):
            normalised, found = _identifier(problems, f"{name}.value", ident_scheme, value)
            warnings.extend(found)
            if normalised is None:
                continue
        else:
            normalised = "".join(value.split()).upper()
            warnings.append({"field": f"{name}.scheme", "rule": "unknown",
                             "message": f"identifier scheme {ident_scheme} is not known to "
                                        "the hub; kept as given"})
        linked = bool(ident.linked) or ident_scheme != "MID"
        if (ident_scheme, normalised, "declared") not in {i[:3] for i in identifiers}:
            identifiers.append((ident_scheme, normalised, "declared", linked))

    consent_share = _flag(problems, "consent_share", record.consent_share)
    consent_publish = _flag(problems, "consent_publish", record.consent_publish)
    changed_at = _timestamp(problems, "changed_at", record.changed_at)

    stable_key = trader_id if derived else _stable_key(rules, trader_id, identifiers,
                                                       authorisation)
    if stable_key is None and not problems.reasons:
        problems.add("no_stable_key", rules.stable_key_scheme,
                     f"the record has no {rules.stable_key_scheme}, the stable key of "
                     f"{rules.code}")
    if problems.reasons:
        return Rejection(
            problems.reasons,
            stable_key=stable_key or _loose_stable_key(record, rules),
            authorisation_number=authorisation or _loose(record.authorisation_number),
            identifiers=loose)
    assert stable_key is not None and trader_id is not None and authorisation is not None
    assert text["legal_name"] is not None and country is not None and status is not None
    values = {
        "authorisation_number": authorisation,
        "trader_id_scheme": DERIVED_SCHEME if derived else rules.primary_scheme,
        "trader_id": trader_id,
        "legal_name": text["legal_name"].strip(),
        "street": text["street"],
        "city": text["city"],
        "postcode": text["postcode"],
        "region": text["region"],
        "country": country,
        "status": status,
        "status_effective": dates["status_effective"],
        "categories": categories,
        "issuing_authority": text["issuing_authority"],
        "authorised_on": dates["authorised_on"],
        "valid_from": dates["valid_from"],
        "valid_until": dates["valid_until"],
        "consent_share": consent_share,
        "consent_publish": consent_publish,
        "source_changed_at": changed_at,
        "fingerprint": record.fingerprint or None,
        "warnings": warnings,
    }
    return OperatorData(stable_key=stable_key, values=values, identifiers=identifiers)


def _loose_stable_key(record: CanonicalRecord, rules: ProgrammeRules) -> str | None:
    """The stable key of a rejected record, read loosely when it is not valid."""
    if rules.stable_key_scheme == rules.primary_scheme:
        return _loose(record.trader_id)
    for ident in record.identifiers:
        if isinstance(ident, IdentifierEntry) and (
                (ident.scheme or "").strip().upper() == rules.stable_key_scheme):
            return _loose(ident.value)
    if rules.stable_key_scheme == rules.authorisation_scheme:
        return _loose(record.authorisation_number)
    return None


def stable_key_of(trader_id_scheme: str | None, trader_id: str | None,
                  rules: ProgrammeRules) -> str | None:
    """The stable key a tombstone names (its identifier normalised when valid)."""
    if trader_id_scheme != rules.stable_key_scheme or not isinstance(trader_id, str):
        return None
    try:
        return get_scheme(trader_id_scheme).validate(trader_id).value
    except IdentifierError:
        return _loose(trader_id)


# -- records as plain data (quarantine, replay) ---------------------------------------


def record_to_dict(record: CanonicalRecord) -> dict[str, Any]:
    """The record as JSON-able data; a value longer than `SHOWN_LIMIT` is cut and said
    so (a 5 MB field is refused, not stored)."""
    data: dict[str, Any] = {}
    for name in CanonicalRecord.__slots__:
        value = getattr(record, name)
        if name == "categories":
            value = [{"code": c.code, "status": c.status, "since": c.since,
                      **({"tier": c.tier} if c.tier is not None else {})} for c in value]
        elif name == "identifiers":
            value = [{"scheme": i.scheme, "value": i.value, "linked": i.linked}
                     for i in value]
        elif name == "problems":
            value = list(value)
        elif isinstance(value, str):
            value = safe_text(value)
            if len(value) > SHOWN_LIMIT:
                value = f"{value[:SHOWN_LIMIT]}... [cut: {len(value):,} characters]"
        data[name] = value
    return data


def safe_text(text: str) -> str:
    """`text` as valid Unicode: undecodable bytes (lone surrogates) and NUL become
    U+FFFD, so that it can be stored and shown whatever the source held."""
    if _SURROGATE.search(text):
        text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text.replace("\x00", "\ufffd")


def record_from_dict(data: Mapping[str, Any]) -> CanonicalRecord:
    """A record from `record_to_dict`'s form (a quarantined record, corrected)."""
    known = set(CanonicalRecord.__slots__)
    values = {k: v for k, v in data.items() if k in known}
    values["categories"] = tuple(
        CategoryEntry(c.get("code"), c.get("status"), c.get("since"), c.get("tier"))
        for c in data.get("categories") or () if isinstance(c, Mapping))
    values["identifiers"] = tuple(
        IdentifierEntry(i.get("scheme"), i.get("value"), bool(i.get("linked")))
        for i in data.get("identifiers") or () if isinstance(i, Mapping))
    values["problems"] = tuple(str(p) for p in data.get("problems") or ())
    values["fingerprint"] = str(data.get("fingerprint") or "")
    return CanonicalRecord(**values)


def record_digest(data: Mapping[str, Any]) -> str:
    """A digest of a record's plain form (what a quarantine entry is keyed by when no
    stable key can be read, and how a dismissed entry knows the record changed)."""
    text = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
