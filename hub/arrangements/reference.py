"""Reference data: real AEO programmes and mutual-recognition arrangements, as data.

The hub ships two YAML files in ``config/reference/`` (see ``config/reference/README.md``
for their structure and vocabulary):

- ``programmes.yaml``: identifier schemes, customs administrations and AEO programmes,
  with each programme's categories and the "declaration codes" crosswalk (which code a
  trader declares in administration X for an AEO of this programme);
- ``arrangements.yaml``: MRAs, each with its parties, status history and one *direction*
  per (recognising programme, recognised programme) pair, since recognised categories,
  flows and activation dates differ per direction.

:func:`load_reference` reads both files with ``yaml.safe_load``, validates every entry with
marshmallow, cross-checks the files against each other and returns an immutable
:class:`ReferenceData`. Any problem raises :class:`ReferenceDataError`, whose message and
``errors`` list name the file, the entry (its code, or its index) and the field, e.g.
``arrangements.yaml: EU-US: directions[0].categories: 'AEOX' is not a category of EU-AEO``.

This module holds no database code: the registry loader builds on :class:`ReferenceData`.
"""

from __future__ import annotations

import datetime as dt
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from hub.arrangements import rulebook

__all__ = [
    "ARRANGEMENT_STATUSES",
    "DATA_FIELDS",
    "FLOWS",
    "TEMPLATE_PLACEHOLDERS",
    "AdministrationRef",
    "ArrangementRef",
    "CategoryRef",
    "DeclarationCodeRef",
    "DirectionRef",
    "IdentifierSchemeRef",
    "MemberRef",
    "ProgrammeRef",
    "ReferenceData",
    "ReferenceDataError",
    "StatusChangeRef",
    "default_reference_dir",
    "load_reference",
]

PROGRAMMES_FILE = "programmes.yaml"
ARRANGEMENTS_FILE = "arrangements.yaml"

#: Flows in which the recognising administration grants benefits: goods entering its
#: territory (``import``) or leaving it (``export``).
FLOWS: frozenset[str] = frozenset({"import", "export"})
#: Statuses an arrangement goes through (its ``status_history``).
ARRANGEMENT_STATUSES: frozenset[str] = frozenset(rulebook.ARRANGEMENT_STATUSES)
#: Fields of the MRA data set that an arrangement may share with partners.
DATA_FIELDS: frozenset[str] = frozenset(
    {
        "legal_name",
        "address",
        "status",
        "authorisation_date",
        "suspensions",
        "revocations",
        "identifier",
        "other_identifiers",
        "programme",
        "categories",
        "authorisation_number",
        "valid_until",
        "issuing_authority",
        "mids",
    }
)
#: Placeholders allowed in declaration-code templates (``template``, ``cpc``, ``pc1``,
#: ``pc2``): the identifier value, the value without hyphens, the value with the entry's
#: ``strip_prefix`` removed, and the operator's ISO country code.
TEMPLATE_PLACEHOLDERS: frozenset[str] = frozenset(
    {"value", "value_nohyphen", "value_after_prefix", "country"}
)
#: Date precision markers: the day (or month) of a date is not known.
PRECISIONS: frozenset[str] = frozenset({"day", "month", "year"})
PROGRAMME_STATUSES: frozenset[str] = frozenset({"operational", "developing"})
KINDS: frozenset[str] = frozenset({"bilateral", "plurilateral"})
ALL_CATEGORIES = "*"
ANY_ADMINISTRATION = "*"
_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")


class ReferenceDataError(Exception):
    """The reference files are missing, malformed or inconsistent.

    ``errors`` lists every problem found, each as ``"<file>: <entry>: <field>: <message>"``.
    """

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors: list[str] = list(errors)
        count = len(self.errors)
        head = f"{count} problem{'s' if count != 1 else ''} in the reference data"
        super().__init__(head + ":\n" + "\n".join(f"  - {e}" for e in self.errors))


# --------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class IdentifierSchemeRef:
    """An identifier scheme code (EORI, MID, CN_USCC, ...) and what it means."""

    code: str
    description: str


@dataclass(frozen=True)
class AdministrationRef:
    """A customs administration (EU counts as one, with its member states as countries)."""

    code: str
    name: str
    authority: str
    countries: tuple[str, ...]
    identifier_prefixes: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    note: str | None = None


@dataclass(frozen=True)
class CategoryRef:
    """A category, role, grade or tier of a programme.

    ``components`` names the categories this one combines (EU ``AEOF`` = ``AEOC`` +
    ``AEOS``): each component keeps its own status, so one can be suspended alone.
    """

    code: str
    description: str
    components: tuple[str, ...] = ()


#: The roles a declaration names a trader in, for `DeclarationCodeRef.roles`.
DECLARATION_ROLES = ("manufacturer", "shipper", "exporter", "importer", "consignor",
                     "consignee", "carrier", "declarant")


@dataclass(frozen=True)
class DeclarationCodeRef:
    """Which code to declare in ``declared_in`` for an AEO of the owning programme.

    ``declared_in`` is an administration code or ``"*"`` (any partner administration that
    has no more specific entry). The code is built from the operator's identifier in
    ``scheme`` either with ``template`` (one string) or, for Singapore's TradeNet, with the
    ``cpc``/``pc1``/``pc2`` triple. ``linked_only`` means only identifiers the operator
    explicitly linked count (CBP and the MIDs of EU AEOs).
    """

    programme: str
    declared_in: str
    scheme: str
    template: str | None = None
    strip_prefix: str | None = None
    cpc: str | None = None
    pc1: str | None = None
    pc2: str | None = None
    linked_only: bool = False
    field: str | None = None
    format_note: str | None = None
    missing_warning: str | None = None
    source: str | None = None
    #: The trader roles on the declaration this code identifies (empty: not recorded).
    roles: tuple[str, ...] = ()

    @property
    def verified(self) -> bool:
        """Whether the reference data confirms this entry (a source not `unverified:`)."""
        return bool(self.source) and not str(self.source).lower().startswith("unverified")

    def render(self, value: str, country: str | None = None) -> dict[str, str]:
        """Fill the template(s) with an identifier ``value`` (and the operator's country).

        Returns ``{"code": ...}`` for a template, ``{"cpc": ..., "pc1": ..., "pc2": ...}``
        for a TradeNet-style entry.
        """
        values = _placeholder_values(value, country, self.strip_prefix)
        out: dict[str, str] = {}
        for name in ("template", "cpc", "pc1", "pc2"):
            tpl = getattr(self, name)
            if tpl is not None:
                out["code" if name == "template" else name] = tpl.format(**values)
        return out


@dataclass(frozen=True)
class ProgrammeRef:
    """An AEO programme run by one administration."""

    code: str
    name: str
    administration: str
    categories: tuple[CategoryRef, ...]
    primary_identifier: str
    stable_key: str
    consent_required: bool
    source: str
    tiers: tuple[CategoryRef, ...] = ()
    other_identifiers: tuple[str, ...] = ()
    authorisation_number_scheme: str | None = None
    stable_key_note: str | None = None
    consent_source: str | None = None
    publishes_list: bool = False
    publication_consent_required: bool = False
    validity_years: int | None = None
    launched: dt.date | None = None
    status: str = "operational"
    note: str | None = None
    declaration_codes: tuple[DeclarationCodeRef, ...] = ()

    @property
    def category_codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.categories)

    @property
    def tier_codes(self) -> tuple[str, ...]:
        return tuple(t.code for t in self.tiers)

    def category(self, code: str) -> CategoryRef:
        for cat in self.categories:
            if cat.code == code:
                return cat
        raise KeyError(f"{code!r} is not a category of {self.code}")

    def declaration_code(self, declared_in: str) -> DeclarationCodeRef | None:
        """The entry for ``declared_in``, else the ``"*"`` entry, else ``None``."""
        fallback = None
        for entry in self.declaration_codes:
            if entry.declared_in == declared_in:
                return entry
            if entry.declared_in == ANY_ADMINISTRATION:
                fallback = entry
        return fallback


@dataclass(frozen=True)
class StatusChangeRef:
    """One step of an arrangement's status history; ``precision`` says how exact the date is."""

    status: str
    date: dt.date
    precision: str = "day"


@dataclass(frozen=True)
class DirectionRef:
    """``recognising`` recognises ``recognised``'s ``categories`` under ``arrangement``.

    ``active_from`` is ``None`` while no activation date is known: the direction grants no
    recognition then. ``unconfirmed_categories`` are categories some sources include but
    that are *not* recognised unless moved into ``categories``. ``tiers`` (empty = any)
    restricts recognition to these tiers of the recognised programme.
    """

    arrangement: str
    recognising: str
    recognised: str
    categories: tuple[str, ...]
    flows: tuple[str, ...]
    active_from: dt.date | None
    active_until: dt.date | None = None
    unconfirmed_categories: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    note: str | None = None
    source: str | None = None
    derived: bool = False

    @property
    def unverified(self) -> bool:
        return bool(self.source and self.source.lower().startswith("unverified"))

    def is_active_on(self, day: dt.date) -> bool:
        """Whether `day` lies in this direction's activation window (the rulebook's)."""
        return rulebook.in_window(self, day)


@dataclass(frozen=True)
class MemberRef:
    """A member of a plurilateral arrangement, with its own activation date."""

    programme: str
    active_from: dt.date | None
    categories: tuple[str, ...]
    flows: tuple[str, ...] = ("import", "export")
    source: str | None = None


@dataclass(frozen=True)
class ArrangementRef:
    """A mutual-recognition arrangement, bilateral or plurilateral."""

    code: str
    title: str
    kind: str
    parties: tuple[str, ...]
    signed: dt.date | None
    in_force: dt.date | None
    status_history: tuple[StatusChangeRef, ...]
    data_fields: tuple[str, ...]
    benefits: tuple[str, ...]
    source: str
    directions: tuple[DirectionRef, ...]
    members: tuple[MemberRef, ...] = ()
    exchange: str | None = None
    note: str | None = None

    @property
    def statuses(self) -> rulebook.StatusHistory:
        """The status history in effect order (`hub.arrangements.rulebook`)."""
        return rulebook.order_dated((c.date, c.status) for c in self.status_history)

    def status_on(self, day: dt.date) -> str | None:
        """The arrangement's status on ``day`` (``None`` before its first recorded status)."""
        return rulebook.arrangement_status_on(self, day)

    def direction(self, recognising: str, recognised: str) -> DirectionRef | None:
        for d in self.directions:
            if d.recognising == recognising and d.recognised == recognised:
                return d
        return None


@dataclass(frozen=True)
class ReferenceData:
    """Everything in the reference files, validated and cross-checked."""

    schemes: Mapping[str, IdentifierSchemeRef]
    administrations: Mapping[str, AdministrationRef]
    programmes: Mapping[str, ProgrammeRef]
    arrangements: Mapping[str, ArrangementRef]
    source_dir: Path | None = field(default=None, compare=False)

    def programme(self, code: str) -> ProgrammeRef:
        return self.programmes[code]

    def arrangement(self, code: str) -> ArrangementRef:
        return self.arrangements[code]

    def programmes_of(self, administration: str) -> list[ProgrammeRef]:
        return [p for p in self.programmes.values() if p.administration == administration]

    def directions(
        self, recognising: str | None = None, recognised: str | None = None
    ) -> list[DirectionRef]:
        """All directions, optionally filtered by recognising and/or recognised programme."""
        return [
            d
            for a in self.arrangements.values()
            for d in a.directions
            if (recognising is None or d.recognising == recognising)
            and (recognised is None or d.recognised == recognised)
        ]


# --------------------------------------------------------------------------- schemas


class YamlDate(fields.Field):
    """A date as YAML gives it (``datetime.date``) or an ISO ``YYYY-MM-DD`` string."""

    default_error_messages = {"invalid": "Not a valid date (expected YYYY-MM-DD)."}

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> dt.date:
        if isinstance(value, dt.datetime):
            raise self.make_error("invalid")
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError as exc:
                raise self.make_error("invalid") from exc
        raise self.make_error("invalid")


def _code_field(**kwargs: Any) -> fields.String:
    return fields.String(
        validate=validate.Regexp(_CODE_RE, error="Not a valid code: {input!r}."), **kwargs
    )


def _str_list(**kwargs: Any) -> fields.List:
    return fields.List(fields.String(), **kwargs)


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class IdentifierSchemeSchema(_Strict):
    code = _code_field(required=True)
    description = fields.String(required=True)


class AdministrationSchema(_Strict):
    code = _code_field(required=True)
    name = fields.String(required=True)
    authority = fields.String(required=True)
    countries = fields.List(
        fields.String(
            validate=validate.Regexp(_COUNTRY_RE, error="Not an ISO 3166 alpha-2 code: {input!r}.")
        ),
        required=True,
        validate=validate.Length(min=1),
    )
    identifier_prefixes = fields.List(
        fields.String(validate=validate.Regexp(_COUNTRY_RE)), load_default=list
    )
    allowed_hosts = _str_list(load_default=list)
    note = fields.String(load_default=None, allow_none=True)


class CategorySchema(_Strict):
    code = _code_field(required=True)
    description = fields.String(required=True)
    components = fields.List(_code_field(), load_default=list)


class DeclarationCodeSchema(_Strict):
    declared_in = fields.String(required=True)
    scheme = _code_field(required=True)
    template = fields.String(load_default=None, allow_none=True)
    strip_prefix = fields.String(load_default=None, allow_none=True)
    cpc = fields.String(load_default=None, allow_none=True)
    pc1 = fields.String(load_default=None, allow_none=True)
    pc2 = fields.String(load_default=None, allow_none=True)
    linked_only = fields.Boolean(load_default=False)
    field = fields.String(load_default=None, allow_none=True)
    format_note = fields.String(load_default=None, allow_none=True)
    missing_warning = fields.String(load_default=None, allow_none=True)
    source = fields.String(load_default=None, allow_none=True)
    roles = fields.List(fields.String(validate=validate.OneOf(DECLARATION_ROLES)),
                        load_default=list)


class ProgrammeSchema(_Strict):
    code = _code_field(required=True)
    name = fields.String(required=True)
    administration = fields.String(required=True)
    status = fields.String(load_default="operational", validate=validate.OneOf(PROGRAMME_STATUSES))
    launched = YamlDate(load_default=None, allow_none=True)
    categories = fields.List(
        fields.Nested(CategorySchema), required=True, validate=validate.Length(min=1)
    )
    tiers = fields.List(fields.Nested(CategorySchema), load_default=list)
    primary_identifier = fields.String(required=True)
    other_identifiers = _str_list(load_default=list)
    stable_key = fields.String(required=True)
    stable_key_note = fields.String(load_default=None, allow_none=True)
    authorisation_number_scheme = fields.String(load_default=None, allow_none=True)
    consent_required = fields.Boolean(required=True, truthy={True}, falsy={False})
    consent_source = fields.String(load_default=None, allow_none=True)
    publishes_list = fields.Boolean(load_default=False, truthy={True}, falsy={False})
    publication_consent_required = fields.Boolean(
        load_default=False, truthy={True}, falsy={False}
    )
    validity_years = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(min=1)
    )
    source = fields.String(required=True, validate=validate.Length(min=1))
    note = fields.String(load_default=None, allow_none=True)
    declaration_codes = fields.List(fields.Nested(DeclarationCodeSchema), load_default=list)


class ProgrammesFileSchema(_Strict):
    version = fields.Integer(required=True, strict=True, validate=validate.Equal(1))
    identifier_schemes = fields.List(fields.Raw(), required=True)
    administrations = fields.List(fields.Raw(), required=True)
    programmes = fields.List(fields.Raw(), required=True)


class StatusChangeSchema(_Strict):
    status = fields.String(required=True, validate=validate.OneOf(ARRANGEMENT_STATUSES))
    date = YamlDate(required=True)
    precision = fields.String(load_default="day", validate=validate.OneOf(PRECISIONS))


class DirectionSchema(_Strict):
    recognising = fields.String(required=True)
    recognised = fields.String(required=True)
    categories = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    unconfirmed_categories = _str_list(load_default=list)
    tiers = _str_list(load_default=list)
    flows = fields.List(
        fields.String(validate=validate.OneOf(sorted(FLOWS))),
        required=True,
        validate=validate.Length(min=1),
    )
    active_from = YamlDate(required=True, allow_none=True)
    active_until = YamlDate(load_default=None, allow_none=True)
    note = fields.String(load_default=None, allow_none=True)
    source = fields.String(load_default=None, allow_none=True)


class MemberSchema(_Strict):
    programme = fields.String(required=True)
    active_from = YamlDate(required=True, allow_none=True)
    categories = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    flows = fields.List(
        fields.String(validate=validate.OneOf(sorted(FLOWS))),
        load_default=lambda: ["import", "export"],
        validate=validate.Length(min=1),
    )
    source = fields.String(load_default=None, allow_none=True)


class ArrangementSchema(_Strict):
    code = _code_field(required=True)
    title = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(sorted(KINDS)))
    parties = fields.List(fields.String(), required=True, validate=validate.Length(min=2))
    signed = YamlDate(required=True, allow_none=True)
    in_force = YamlDate(required=True, allow_none=True)
    status_history = fields.List(fields.Nested(StatusChangeSchema), required=True)
    data_fields = fields.List(
        fields.String(validate=validate.OneOf(sorted(DATA_FIELDS))), load_default=None
    )
    benefits = _str_list(load_default=None)
    exchange = fields.String(load_default=None, allow_none=True)
    source = fields.String(required=True, validate=validate.Length(min=1))
    note = fields.String(load_default=None, allow_none=True)
    directions = fields.List(fields.Nested(DirectionSchema), load_default=list)
    members = fields.List(fields.Nested(MemberSchema), load_default=list)


class DefaultsSchema(_Strict):
    data_fields = fields.List(
        fields.String(validate=validate.OneOf(sorted(DATA_FIELDS))), load_default=list
    )
    benefits = _str_list(load_default=list)


class ArrangementsFileSchema(_Strict):
    version = fields.Integer(required=True, strict=True, validate=validate.Equal(1))
    defaults = fields.Raw(load_default=dict)
    arrangements = fields.List(fields.Raw(), required=True)


# --------------------------------------------------------------------------- loading


def default_reference_dir() -> Path:
    """The shipped ``config/reference`` directory (``config`` is an installed package)."""
    try:
        candidate = Path(str(resources.files("config").joinpath("reference")))
        if (candidate / PROGRAMMES_FILE).is_file():
            return candidate
    except (ImportError, TypeError, ValueError, AttributeError, OSError):
        pass
    return Path(__file__).resolve().parents[2] / "config" / "reference"


def load_reference(directory: Path | None = None) -> ReferenceData:
    """Read, validate and cross-check ``programmes.yaml`` and ``arrangements.yaml``.

    Raises :class:`ReferenceDataError` listing every problem found.
    """
    base = Path(directory) if directory is not None else default_reference_dir()
    loader = _Loader()
    raw_programmes = loader.read(base / PROGRAMMES_FILE)
    raw_arrangements = loader.read(base / ARRANGEMENTS_FILE)
    if loader.errors:
        raise ReferenceDataError(loader.errors)
    schemes, administrations, programmes = loader.load_programmes(raw_programmes)
    arrangements = loader.load_arrangements(raw_arrangements, programmes)
    if loader.errors:
        raise ReferenceDataError(loader.errors)
    return ReferenceData(
        schemes=MappingProxyType(schemes),
        administrations=MappingProxyType(administrations),
        programmes=MappingProxyType(programmes),
        arrangements=MappingProxyType(arrangements),
        source_dir=base,
    )


def _placeholder_values(
    value: str, country: str | None, strip_prefix: str | None
) -> dict[str, str]:
    after = value
    if strip_prefix and value.upper().startswith(strip_prefix.upper()):
        after = value[len(strip_prefix) :]
    return {
        "value": value,
        "value_nohyphen": value.replace("-", ""),
        "value_after_prefix": after,
        "country": country or "",
    }


def _template_problems(template: str) -> list[str]:
    """Problems with a template: unknown placeholders, conversions, bad braces."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return [f"malformed template {template!r}: {exc}"]
    problems = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in TEMPLATE_PLACEHOLDERS:
            allowed = ", ".join("{" + p + "}" for p in sorted(TEMPLATE_PLACEHOLDERS))
            problems.append(f"unknown placeholder {{{name}}} (allowed: {allowed})")
        elif spec or conversion:
            problems.append(f"placeholder {{{name}}} takes no format spec or conversion")
    return problems


def _flatten(messages: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Turn marshmallow's nested error dict into ``(path, message)`` pairs."""
    out: list[tuple[str, str]] = []
    if isinstance(messages, Mapping):
        for key, sub in messages.items():
            if isinstance(key, int):
                path = f"{prefix}[{key}]"
            elif key == "_schema":
                path = prefix
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            out.extend(_flatten(sub, path))
    elif isinstance(messages, list | tuple):
        for msg in messages:
            if isinstance(msg, Mapping | list | tuple):
                out.extend(_flatten(msg, prefix))
            else:
                out.append((prefix, str(msg)))
    else:
        out.append((prefix, str(messages)))
    return out


def _label(entry: Any, section: str, index: int) -> str:
    code = entry.get("code") if isinstance(entry, Mapping) else None
    return code if isinstance(code, str) and code else f"{section}[{index}]"


_SINGULAR = {"categories": "category", "tiers": "tier"}


class _Loader:
    """Collects errors while turning raw YAML into reference dataclasses."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        # codes of entries that failed validation: references to them are not reported
        # again, so one mistake gives one error rather than a cascade
        self.failed: set[str] = set()

    def error(self, file: str, entry: str, path: str, message: str) -> None:
        parts = [file, entry] + ([path] if path else [])
        self.errors.append(": ".join(parts) + ": " + message)

    def read(self, path: Path) -> Any:
        name = path.name
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self.errors.append(f"{name}: file not found at {path}")
            return None
        except OSError as exc:
            self.errors.append(f"{name}: cannot read {path}: {exc}")
            return None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            detail = " ".join(str(exc).split())
            self.errors.append(f"{name}: (file): invalid YAML: {detail}")
            return None
        if not isinstance(data, Mapping):
            self.errors.append(f"{name}: (file): the top level must be a mapping")
            return None
        return data

    def validate(
        self, schema: Schema, data: Any, file: str, entry: str
    ) -> dict[str, Any] | None:
        if not isinstance(data, Mapping):
            self.error(file, entry, "", "must be a mapping")
            return None
        try:
            loaded: dict[str, Any] = schema.load(data)
        except ValidationError as exc:
            for path, msg in _flatten(exc.messages):
                self.error(file, entry, path, msg)
            return None
        return loaded

    def _entries(
        self, items: Iterable[Any], schema: Schema, file: str, section: str
    ) -> list[tuple[str, dict[str, Any]]]:
        """Validate each entry; reject duplicate codes. Returns (label, loaded) pairs."""
        seen: dict[str, int] = {}
        out = []
        for index, item in enumerate(items):
            label = _label(item, section, index)
            loaded = self.validate(schema, item, file, label)
            if loaded is None:
                if isinstance(item, Mapping) and isinstance(item.get("code"), str):
                    self.failed.add(item["code"])
                continue
            code = loaded["code"]
            if code in seen:
                self.error(
                    file, label, "code",
                    f"duplicate code {code!r} (also {section}[{seen[code]}])",
                )
                continue
            seen[code] = index
            out.append((label, loaded))
        return out

    # ------------------------------------------------------------ programmes.yaml

    def load_programmes(
        self, raw: Any
    ) -> tuple[
        dict[str, IdentifierSchemeRef], dict[str, AdministrationRef], dict[str, ProgrammeRef]
    ]:
        file = PROGRAMMES_FILE
        top = self.validate(ProgrammesFileSchema(), raw, file, "(file)")
        if top is None:
            return {}, {}, {}
        schemes = {
            loaded["code"]: IdentifierSchemeRef(**loaded)
            for _label_, loaded in self._entries(
                top["identifier_schemes"], IdentifierSchemeSchema(), file, "identifier_schemes"
            )
        }
        administrations: dict[str, AdministrationRef] = {}
        country_owner: dict[str, str] = {}
        for label, loaded in self._entries(
            top["administrations"], AdministrationSchema(), file, "administrations"
        ):
            for i, country in enumerate(loaded["countries"]):
                owner = country_owner.setdefault(country, loaded["code"])
                if owner != loaded["code"]:
                    self.error(
                        file, label, f"countries[{i}]",
                        f"{country!r} already belongs to administration {owner}",
                    )
            administrations[loaded["code"]] = AdministrationRef(
                code=loaded["code"],
                name=loaded["name"],
                authority=loaded["authority"],
                countries=tuple(loaded["countries"]),
                identifier_prefixes=tuple(loaded["identifier_prefixes"]),
                allowed_hosts=tuple(loaded["allowed_hosts"]),
                note=loaded["note"],
            )
        programmes: dict[str, ProgrammeRef] = {}
        for label, loaded in self._entries(
            top["programmes"], ProgrammeSchema(), file, "programmes"
        ):
            programme = self._programme(label, loaded, schemes, administrations)
            if programme is not None:
                programmes[programme.code] = programme
            else:
                self.failed.add(loaded["code"])
        return schemes, administrations, programmes

    def _programme(
        self,
        label: str,
        p: dict[str, Any],
        schemes: Mapping[str, IdentifierSchemeRef],
        administrations: Mapping[str, AdministrationRef],
    ) -> ProgrammeRef | None:
        file = PROGRAMMES_FILE
        before = len(self.errors)
        if p["administration"] not in administrations and p["administration"] not in self.failed:
            self.error(
                file, label, "administration",
                f"unknown administration {p['administration']!r}",
            )

        def check_scheme(path: str, scheme: str | None) -> None:
            if scheme is not None and scheme not in schemes:
                self.error(file, label, path, f"unknown identifier scheme {scheme!r}")

        check_scheme("primary_identifier", p["primary_identifier"])
        check_scheme("stable_key", p["stable_key"])
        check_scheme("authorisation_number_scheme", p["authorisation_number_scheme"])
        for i, scheme in enumerate(p["other_identifiers"]):
            check_scheme(f"other_identifiers[{i}]", scheme)

        categories = self._categories(label, "categories", p["categories"])
        tiers = self._categories(label, "tiers", p["tiers"])
        overlap = {c.code for c in categories} & {t.code for t in tiers}
        if overlap:
            self.error(
                file, label, "tiers",
                f"codes used as both category and tier: {', '.join(sorted(overlap))}",
            )

        declaration_codes = []
        seen_declared_in: dict[str, int] = {}
        for i, dc in enumerate(p["declaration_codes"]):
            path = f"declaration_codes[{i}]"
            declared_in = dc["declared_in"]
            if declared_in != ANY_ADMINISTRATION and declared_in not in administrations:
                self.error(
                    file, label, f"{path}.declared_in",
                    f"unknown administration {declared_in!r}",
                )
            if declared_in in seen_declared_in:
                self.error(
                    file, label, f"{path}.declared_in",
                    f"duplicate entry for {declared_in!r} "
                    f"(also declaration_codes[{seen_declared_in[declared_in]}])",
                )
            seen_declared_in.setdefault(declared_in, i)
            check_scheme(f"{path}.scheme", dc["scheme"])
            triple = [dc["cpc"], dc["pc1"], dc["pc2"]]
            if dc["template"] is None and all(t is None for t in triple):
                self.error(file, label, path, "needs a template or cpc/pc1/pc2")
            if any(t is not None for t in triple) and any(t is None for t in triple):
                self.error(file, label, path, "cpc, pc1 and pc2 go together")
            for name in ("template", "cpc", "pc1", "pc2"):
                tpl = dc[name]
                if tpl is None:
                    continue
                for problem in _template_problems(tpl):
                    self.error(file, label, f"{path}.{name}", problem)
                if "{value_after_prefix}" in tpl and not dc["strip_prefix"]:
                    self.error(
                        file, label, f"{path}.{name}",
                        "{value_after_prefix} needs strip_prefix",
                    )
            declaration_codes.append(DeclarationCodeRef(
                programme=p["code"], **{**dc, "roles": tuple(dc["roles"])}))

        if len(self.errors) != before:
            return None
        return ProgrammeRef(
            code=p["code"],
            name=p["name"],
            administration=p["administration"],
            categories=categories,
            tiers=tiers,
            primary_identifier=p["primary_identifier"],
            other_identifiers=tuple(p["other_identifiers"]),
            stable_key=p["stable_key"],
            stable_key_note=p["stable_key_note"],
            authorisation_number_scheme=p["authorisation_number_scheme"],
            consent_required=p["consent_required"],
            consent_source=p["consent_source"],
            publishes_list=p["publishes_list"],
            publication_consent_required=p["publication_consent_required"],
            validity_years=p["validity_years"],
            launched=p["launched"],
            status=p["status"],
            source=p["source"],
            note=p["note"],
            declaration_codes=tuple(declaration_codes),
        )

    def _categories(
        self, label: str, section: str, items: list[dict[str, Any]]
    ) -> tuple[CategoryRef, ...]:
        file = PROGRAMMES_FILE
        codes: dict[str, int] = {}
        for i, cat in enumerate(items):
            if cat["code"] in codes:
                self.error(
                    file, label, f"{section}[{i}].code",
                    f"duplicate category {cat['code']!r} (also {section}[{codes[cat['code']]}])",
                )
            codes.setdefault(cat["code"], i)
        for i, cat in enumerate(items):
            for j, component in enumerate(cat["components"]):
                if component == cat["code"] or component not in codes:
                    self.error(
                        file, label, f"{section}[{i}].components[{j}]",
                        f"{component!r} is not another {_SINGULAR[section]} of this programme"
                        if component != cat["code"]
                        else f"{component!r} cannot be a component of itself",
                    )
        return tuple(
            CategoryRef(code=c["code"], description=c["description"],
                        components=tuple(c["components"]))
            for c in items
        )

    # ---------------------------------------------------------- arrangements.yaml

    def load_arrangements(
        self, raw: Any, programmes: Mapping[str, ProgrammeRef]
    ) -> dict[str, ArrangementRef]:
        file = ARRANGEMENTS_FILE
        top = self.validate(ArrangementsFileSchema(), raw, file, "(file)")
        if top is None:
            return {}
        defaults = self.validate(DefaultsSchema(), top["defaults"] or {}, file, "defaults")
        if defaults is None:
            defaults = {"data_fields": [], "benefits": []}
        arrangements: dict[str, ArrangementRef] = {}
        for label, loaded in self._entries(
            top["arrangements"], ArrangementSchema(), file, "arrangements"
        ):
            arrangement = self._arrangement(label, loaded, defaults, programmes)
            if arrangement is not None:
                arrangements[arrangement.code] = arrangement
        return arrangements

    def _expand_categories(
        self, label: str, path: str, codes: list[str], programme: ProgrammeRef | None,
        *, allow_all: bool = True,
    ) -> tuple[str, ...]:
        if programme is None:
            return tuple(codes)
        if allow_all and codes == [ALL_CATEGORIES]:
            return programme.category_codes
        seen = set()
        for i, code in enumerate(codes):
            if code == ALL_CATEGORIES:
                self.error(ARRANGEMENTS_FILE, label, f"{path}[{i}]",
                           "'*' must be the only entry of the list")
            elif code not in programme.category_codes:
                self.error(ARRANGEMENTS_FILE, label, path,
                           f"{code!r} is not a category of {programme.code}")
            elif code in seen:
                self.error(ARRANGEMENTS_FILE, label, path, f"{code!r} is listed twice")
            seen.add(code)
        return tuple(codes)

    def _arrangement(
        self,
        label: str,
        a: dict[str, Any],
        defaults: dict[str, Any],
        programmes: Mapping[str, ProgrammeRef],
    ) -> ArrangementRef | None:
        file = ARRANGEMENTS_FILE
        before = len(self.errors)
        code = a["code"]

        parties: list[str] = []
        for i, party in enumerate(a["parties"]):
            if party not in programmes:
                if party not in self.failed:
                    self.error(file, label, f"parties[{i}]", f"unknown programme {party!r}")
            elif party in parties:
                self.error(file, label, f"parties[{i}]", f"{party!r} is listed twice")
            parties.append(party)
        party_set = set(parties)

        if a["kind"] == "bilateral":
            if len(parties) != 2:
                self.error(file, label, "parties",
                           f"a bilateral arrangement has exactly 2 parties, not {len(parties)}")
            if a["members"]:
                self.error(file, label, "members",
                           "only plurilateral arrangements list members")
        elif len(parties) < 3:
            self.error(file, label, "parties",
                       "a plurilateral arrangement has at least 3 parties")

        history = [StatusChangeRef(**s) for s in a["status_history"]]
        for i in range(1, len(history)):
            if history[i].date < history[i - 1].date:
                self.error(
                    file, label, f"status_history[{i}].date",
                    f"{history[i].date.isoformat()} is before the previous entry "
                    f"({history[i - 1].date.isoformat()}): the history must be in date order",
                )
        if a["in_force"] is not None:
            in_force_dates = [s.date for s in history if s.status == "in_force"]
            if in_force_dates and in_force_dates[0] != a["in_force"]:
                self.error(file, label, "in_force",
                           f"{a['in_force'].isoformat()} differs from the first in_force entry "
                           f"of status_history ({in_force_dates[0].isoformat()})")
            if not in_force_dates:
                self.error(file, label, "status_history",
                           "in_force is set but status_history has no in_force entry")
        if a["signed"] is not None and a["in_force"] is not None and a["in_force"] < a["signed"]:
            self.error(file, label, "in_force", "is before the signature date")

        directions: list[DirectionRef] = []
        pairs: dict[tuple[str, str], int] = {}
        for i, d in enumerate(a["directions"]):
            path = f"directions[{i}]"
            ok = True
            for role in ("recognising", "recognised"):
                if d[role] not in party_set:
                    self.error(file, label, f"{path}.{role}",
                               f"{d[role]!r} is not a party of {code}")
                    ok = False
            if ok and d["recognising"] == d["recognised"]:
                self.error(file, label, path, "a programme cannot recognise itself")
            pair = (d["recognising"], d["recognised"])
            if pair in pairs:
                self.error(
                    file, label, path,
                    f"duplicate direction {pair[0]} -> {pair[1]} (also directions[{pairs[pair]}])",
                )
            pairs.setdefault(pair, i)
            recognised = programmes.get(d["recognised"]) if ok else None
            categories = self._expand_categories(
                label, f"{path}.categories", d["categories"], recognised
            )
            unconfirmed = self._expand_categories(
                label, f"{path}.unconfirmed_categories", d["unconfirmed_categories"],
                recognised, allow_all=False,
            )
            both = set(categories) & set(unconfirmed)
            if both:
                self.error(file, label, f"{path}.unconfirmed_categories",
                           f"{', '.join(sorted(both))} also listed in categories")
            if recognised is not None:
                for j, tier in enumerate(d["tiers"]):
                    if tier not in recognised.tier_codes:
                        self.error(file, label, f"{path}.tiers[{j}]",
                                   f"{tier!r} is not a tier of {recognised.code}")
            if len(set(d["flows"])) != len(d["flows"]):
                self.error(file, label, f"{path}.flows", "a flow is listed twice")
            if (d["active_from"] is not None and d["active_until"] is not None
                    and d["active_until"] <= d["active_from"]):
                self.error(file, label, f"{path}.active_until", "must be after active_from")
            if d["active_until"] is not None and d["active_from"] is None:
                self.error(file, label, f"{path}.active_until", "needs active_from")
            directions.append(DirectionRef(
                arrangement=code,
                recognising=d["recognising"],
                recognised=d["recognised"],
                categories=categories,
                unconfirmed_categories=unconfirmed,
                tiers=tuple(d["tiers"]),
                flows=tuple(d["flows"]),
                active_from=d["active_from"],
                active_until=d["active_until"],
                note=d["note"],
                source=d["source"],
            ))

        members: list[MemberRef] = []
        seen_members: dict[str, int] = {}
        for i, m in enumerate(a["members"]):
            path = f"members[{i}]"
            prog = m["programme"]
            if prog not in party_set:
                self.error(file, label, f"{path}.programme", f"{prog!r} is not a party of {code}")
                continue
            if prog in seen_members:
                self.error(file, label, f"{path}.programme",
                           f"{prog!r} is listed twice (also members[{seen_members[prog]}])")
                continue
            seen_members[prog] = i
            categories = self._expand_categories(
                label, f"{path}.categories", m["categories"], programmes.get(prog)
            )
            members.append(MemberRef(
                programme=prog, active_from=m["active_from"], categories=categories,
                flows=tuple(m["flows"]), source=m["source"],
            ))
        if a["kind"] == "plurilateral":
            missing = [p for p in parties if p not in seen_members]
            if missing:
                self.error(file, label, "members",
                           f"every party needs a members entry; missing: {', '.join(missing)}")
            if not members and not directions:
                self.error(file, label, "members", "a plurilateral arrangement needs members")

        if len(self.errors) != before:
            return None

        directions.extend(_derive_directions(code, members, {(d.recognising, d.recognised)
                                                              for d in directions}))
        data_fields = a["data_fields"] if a["data_fields"] is not None else defaults["data_fields"]
        benefits = a["benefits"] if a["benefits"] is not None else defaults["benefits"]
        return ArrangementRef(
            code=code,
            title=a["title"],
            kind=a["kind"],
            parties=tuple(parties),
            signed=a["signed"],
            in_force=a["in_force"],
            status_history=tuple(history),
            data_fields=tuple(data_fields),
            benefits=tuple(benefits),
            exchange=a["exchange"],
            source=a["source"],
            note=a["note"],
            directions=tuple(directions),
            members=tuple(members),
        )


def _derive_directions(
    code: str, members: Sequence[MemberRef], explicit: set[tuple[str, str]]
) -> list[DirectionRef]:
    """One direction per ordered pair of members, unless listed explicitly.

    A pair is active from the later of both members' dates, or never (``None``) while
    either member has no activation date. The recognised member's categories apply; the
    flows are those both members list.
    """
    out = []
    for recognising in members:
        for recognised in members:
            pair = (recognising.programme, recognised.programme)
            if recognising is recognised or pair in explicit:
                continue
            dates = [recognising.active_from, recognised.active_from]
            active_from = None if None in dates else max(d for d in dates if d is not None)
            flows = tuple(f for f in recognising.flows if f in recognised.flows)
            out.append(DirectionRef(
                arrangement=code,
                recognising=recognising.programme,
                recognised=recognised.programme,
                categories=recognised.categories,
                flows=flows,
                active_from=active_from,
                source=recognised.source,
                derived=True,
            ))
    return out

