"""The connector contract and the canonical record.

A connector is a class with a stable ``name`` (its entry-point name), a ``title`` for
people, and a marshmallow ``config_schema``; an instance built from a config answers
four questions, after Airbyte's spec/check/discover/read:

- ``config_schema`` (spec): what the connection needs; secret fields carry
  ``metadata={"secret": True}`` and are never logged, shown or put in messages;
- ``check()``: can the source be reached, does it accept our credentials, does it speak
  the expected format -- with a reason a person can act on;
- ``discover()``: which programmes the source serves, how many operators, and whether it
  can be read incrementally;
- ``read(state)``: an iterator of `Batch` objects (records, tombstones, the state to
  resume from, and whether the feed is complete). The hub commits each batch with its
  state, so a crash resumes where it stopped.

Connectors do format-level parsing only: columns, elements or keys to canonical fields,
configured date formats to ISO ``YYYY-MM-DD``. Semantics (status vocabulary, identifier
rules, date sanity) are the hub's job. Problems a connector finds in one row never abort a
read: the row becomes a record whose ``problems`` say what is wrong, and the hub
quarantines it.

Every URL a connector fetches (each redirect hop included) goes through
`ConnectorContext.check_url`, and every path it opens through
`ConnectorContext.check_path`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, overload
from urllib.parse import urlsplit

import marshmallow

__all__ = [
    "SECRET_MASK",
    "AccessDenied",
    "AuthenticationFailed",
    "Batch",
    "CanonicalRecord",
    "CategoryEntry",
    "CheckResult",
    "ConfigError",
    "Connector",
    "ConnectorContext",
    "ConnectorError",
    "DeferredRecords",
    "Deletion",
    "Discovery",
    "FormatError",
    "IdentifierEntry",
    "ProgrammeInfo",
    "SourceUnavailable",
    "load_config",
    "redact",
    "secret_fields",
]

#: What a secret value is replaced by wherever a config is shown.
SECRET_MASK = "********"  # noqa: S105 - a mask, not a password

#: Logger every connector logs through (plugins may use children: ``connectors.x``).
LOGGER_NAME = "connectors"


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------


class ConnectorError(Exception):
    """Base of every error a connector raises; its message is meant for a person."""


class ConfigError(ConnectorError):
    """The connection's configuration is invalid.

    ``fields`` maps each offending config field to its messages, e.g.
    ``{"url": ["Not a valid URL."]}``, so a form can show them beside the field.
    """

    def __init__(self, message: str, fields: Mapping[str, Sequence[str]] | None = None):
        super().__init__(message)
        self.fields: dict[str, list[str]] = {k: list(v) for k, v in (fields or {}).items()}


class SourceUnavailable(ConnectorError):
    """The source could not be reached or kept failing (after the configured retries)."""


class AuthenticationFailed(ConnectorError):
    """The source refused our credentials (HTTP 401/403)."""


class FormatError(ConnectorError):
    """The source answered, but not in the expected format (or the data is truncated)."""


class AccessDenied(ConnectorError):
    """A URL or path lies outside what this connection is allowed to touch."""


# ---------------------------------------------------------------------------------------
# Canonical record
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CategoryEntry:
    """One component of an authorisation (e.g. ``AEOS``) and its own status."""

    code: str | None  # category / component code as the source spells it: AEOC, AEOS, ...
    status: str | None  # this component's status (valid, suspended, ...), as read
    since: str | None = None  # ISO date the component's status took effect
    tier: str | None = None  # the component's tier where the programme has tiers (C-TPAT)


@dataclass(frozen=True, slots=True)
class IdentifierEntry:
    """Another identifier of the operator (MID, USCC, LEI, ...)."""

    scheme: str | None  # identifier scheme: MID, LEI, USCC, EORI, ...
    value: str | None  # the identifier as read
    linked: bool = False  # True when the source declares the link (an EU AEO's linked MIDs)


@dataclass(frozen=True, slots=True)
class CanonicalRecord:
    """One operator as a source publishes it: the MRA data set plus what the hub needs.

    Scalars are ``str | None`` as read (empty values become ``None``); booleans are
    ``bool`` when the source spelled them plainly (true/false, 1/0, yes/no) and the source's
    string otherwise; dates are ISO ``YYYY-MM-DD`` strings once the connector's configured
    formats have been applied.
    """

    programme: str | None = None  # programme code, e.g. EU-AEO
    authorisation_number: str | None = None  # certificate / authorisation number
    trader_id_scheme: str | None = None  # scheme of the primary identifier: EORI, USCC, UEN
    trader_id: str | None = None  # the primary trader identifier
    legal_name: str | None = None  # legal name (Latin form)
    street: str | None = None  # address: street line (number, suite, box included)
    city: str | None = None  # address: city
    postcode: str | None = None  # address: postcode
    region: str | None = None  # address: state / province (Canadian provinces matter)
    country: str | None = None  # address: ISO country code as read
    status: str | None = None  # overall status: valid, suspended, revoked, annulled, ...
    status_effective: str | None = None  # ISO date the overall status took effect
    categories: tuple[CategoryEntry, ...] = ()  # per-component status
    authorised_on: str | None = None  # ISO authorisation / validation date
    valid_from: str | None = None  # ISO start of validity
    valid_until: str | None = None  # ISO end of validity
    issuing_authority: str | None = None  # e.g. "DE Hauptzollamt Hamburg"
    identifiers: tuple[IdentifierEntry, ...] = ()  # other identifiers (MID, USCC, LEI, ...)
    consent_share: bool | str | None = None  # consent to share with MRA partners
    consent_publish: bool | str | None = None  # consent to publication on a public list
    changed_at: str | None = None  # the source's own change time (ISO 8601 UTC)
    fingerprint: str = ""  # hex digest of the record's source form; unchanged -> skipped
    position: str | None = None  # where in the source: "line 42", "page 3 item 7"
    # Format-level problems the connector found in this record (wrong column count,
    # undecodable bytes, a date matching no configured format, ...), each a sentence with
    # its position, e.g. "line 42: 18 columns, expected 21". A record with problems is
    # quarantined by the hub; it is carried rather than dropped so that nothing is lost.
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Deletion:
    """A tombstone: the source says this operator's record was removed."""

    programme: str | None  # programme code
    trader_id_scheme: str | None  # scheme of the primary identifier
    trader_id: str | None  # the primary identifier
    authorisation_number: str | None  # the authorisation number, when the source gives it
    deleted_at: str | None  # ISO 8601 UTC time of the deletion at the source
    position: str | None = None  # where in the source, for messages


class DeferredRecords(Sequence[CanonicalRecord]):
    """A batch's records kept in their source form and parsed when read.

    ``fingerprints[i]`` and ``programmes[i]`` are known without parsing record ``i``, so
    the hub can recognise an unchanged record (its fingerprint is that of a stored
    operator) and skip it before any parsing. A connector using this promises that a
    record's fingerprint covers everything its parse depends on (the source row and the
    parsing configuration), and that ``programmes[i]`` is the parsed record's programme.
    The three lists must be as long as each other (`ConnectorError` otherwise). Reading an
    item parses it each time; it behaves as a tuple of records otherwise.
    """

    __slots__ = ("_parse", "_sources", "fingerprints", "programmes")

    def __init__(self, sources: Sequence[Any], fingerprints: Sequence[str],
                 programmes: Sequence[str | None],
                 parse: Callable[[Any], CanonicalRecord]) -> None:
        if not len(sources) == len(fingerprints) == len(programmes):
            raise ConnectorError("the connector's batch gives a programme and a fingerprint "
                                 "for some of its records only")
        self._sources = sources  # the source form of each record, handed to ``parse``
        self.fingerprints = fingerprints  # each record's fingerprint, without parsing
        self.programmes = programmes  # each record's programme code, without parsing
        self._parse = parse  # source form -> CanonicalRecord

    def __len__(self) -> int:
        return len(self._sources)

    @overload
    def __getitem__(self, index: int) -> CanonicalRecord: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[CanonicalRecord, ...]: ...

    def __getitem__(self, index: int | slice) -> CanonicalRecord | tuple[CanonicalRecord, ...]:
        if isinstance(index, slice):
            return tuple(self._parse(source) for source in self._sources[index])
        return self._parse(self._sources[index])

    def __iter__(self) -> Iterator[CanonicalRecord]:
        return (self._parse(source) for source in self._sources)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"DeferredRecords({len(self)} records)"


@dataclass(frozen=True, slots=True)
class Batch:
    """A unit the hub commits atomically together with ``state``.

    ``state`` is a JSON-able dict the hub saves with the batch and passes back to
    ``read(state)`` to resume after it: ``{"cursor": ...}`` for the node protocol,
    ``{"offset": rows_done}`` for file snapshots. ``complete`` is true on the last batch
    of a complete snapshot, or when an incremental feed has caught up. For a snapshot the
    complete batch's state is ``{"offset": None}``: the next read starts a new snapshot
    from the beginning (resuming applies only inside an interrupted read).
    """

    # operators in this batch, in source order (a tuple, or `DeferredRecords`)
    records: Sequence[CanonicalRecord] = ()
    deletions: tuple[Deletion, ...] = ()  # tombstones in this batch
    state: dict[str, Any] = field(default_factory=dict)  # where to resume after this batch
    complete: bool = False  # the snapshot is whole / the incremental feed has caught up


# ---------------------------------------------------------------------------------------
# check / discover results
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What ``check()`` found. ``None`` means "not determined" (an earlier step failed)."""

    reachable: bool  # the source answered at all
    authenticated: bool | None = None  # our credentials were accepted (None: no auth / unknown)
    format_ok: bool | None = None  # the source speaks the expected format
    reason: str | None = None  # what is wrong and what to do about it, for a person
    details: dict[str, Any] = field(default_factory=dict)  # extra facts (version, counts, ...)

    @property
    def ok(self) -> bool:
        """True when nothing that was checked failed."""
        return self.reachable and self.authenticated is not False and self.format_ok is not False


@dataclass(frozen=True, slots=True)
class ProgrammeInfo:
    """A programme a source serves."""

    code: str  # programme code, e.g. EU-AEO
    count: int | None = None  # number of operators, when the source says


@dataclass(frozen=True, slots=True)
class Discovery:
    """What ``discover()`` found."""

    programmes: list[ProgrammeInfo]  # programmes the source serves
    incremental: bool  # True: read(state) yields changes since state; False: full snapshots
    # The identity of the snapshot the source serves now (a file's size and modification
    # time, an ETag, a node's snapshot id), or None when the source cannot tell. The hub
    # resumes an interrupted snapshot only over the same identity; without one it starts
    # again from the beginning.
    snapshot_id: str | None = None


# ---------------------------------------------------------------------------------------
# Context: what a connection may touch
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectorContext:
    """What the hub allows one connection to touch, and how it identifies itself.

    ``allowed_hosts`` (``None`` = any host) holds host names, or ``host:port`` pairs,
    compared case-insensitively; ``import_dir`` (``None`` = anywhere) is the only
    directory files may be read from, judged after symlinks are resolved.
    """

    allowed_hosts: frozenset[str] | None = None  # hosts URLs may point at; None = any
    import_dir: Path | None = None  # directory paths must resolve into; None = anywhere
    user_agent: str = "aeohub-connector/0.1"  # User-Agent header for HTTP requests
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger(LOGGER_NAME))
    # Database URLs no connection may read (the hub's own database): a SQL connector
    # refuses a URL that names the same database.
    refused_databases: frozenset[str] = frozenset()

    def check_host(self, host: str | None, port: int | None) -> str:
        """Return the host if a connection may reach it (for sources that are not
        URLs, such as databases), else raise `AccessDenied`."""
        name = (host or "").rstrip(".").lower()
        if not name:
            raise AccessDenied("the source names no host")
        if self.allowed_hosts is not None:
            allowed = {h.rstrip(".").lower() for h in self.allowed_hosts}
            if name not in allowed and (port is None or f"{name}:{port}" not in allowed):
                raise AccessDenied(
                    f"host {name!r} is not among the hosts this connection may reach "
                    f"({', '.join(sorted(allowed)) or 'none'})"
                )
        return name

    def check_url(self, url: str) -> str:
        """Return ``url`` if it may be fetched, else raise `AccessDenied`.

        Only http and https are allowed; the host must be in ``allowed_hosts`` when that
        is set. Call it for every URL, including each redirect target.
        """
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise AccessDenied(f"URL {_shown_url(url)!r} is malformed") from exc
        if parts.scheme.lower() not in ("http", "https"):
            raise AccessDenied(
                f"URL scheme {parts.scheme or '(none)'!r} is not allowed; use http or https"
            )
        host = (parts.hostname or "").rstrip(".").lower()
        if not host:
            raise AccessDenied(f"URL {_shown_url(url)!r} names no host")
        if self.allowed_hosts is not None:
            allowed = {h.rstrip(".").lower() for h in self.allowed_hosts}
            default_port = 443 if parts.scheme.lower() == "https" else 80
            if host not in allowed and f"{host}:{port or default_port}" not in allowed:
                raise AccessDenied(
                    f"host {host!r} is not among the hosts this connection may reach "
                    f"({', '.join(sorted(allowed)) or 'none'})"
                )
        return url

    def check_path(self, path: str | Path) -> Path:
        """Resolve ``path`` (following symlinks) and return it if it may be opened.

        When ``import_dir`` is set a relative path is taken under it (never under the
        working directory), and the resolved path must lie inside it, so neither ``..``
        nor a symlink can escape; otherwise raise `AccessDenied`.
        """
        candidate = Path(path).expanduser()
        if not candidate.is_absolute() and self.import_dir is not None:
            candidate = Path(self.import_dir).expanduser() / candidate
        resolved = candidate.resolve()
        if self.import_dir is not None:
            root = Path(self.import_dir).expanduser().resolve()
            if not resolved.is_relative_to(root):
                raise AccessDenied(
                    f"path {str(path)!r} resolves outside the import directory {str(root)!r}"
                )
        return resolved


def _shown_url(url: str) -> str:
    """The URL without any user:password part, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparseable URL)"
    if parts.password is not None or parts.username is not None:
        netloc = parts.hostname or ""
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
        return parts._replace(netloc=netloc).geturl()
    return url


# ---------------------------------------------------------------------------------------
# Config helpers
# ---------------------------------------------------------------------------------------


def secret_fields(schema: type[marshmallow.Schema] | marshmallow.Schema) -> frozenset[str]:
    """Names of the fields marked ``metadata={"secret": True}`` (data keys included)."""
    instance = schema() if isinstance(schema, type) else schema
    names: set[str] = set()
    for name, fld in instance.fields.items():
        if fld.metadata.get("secret"):
            names.add(name)
            if fld.data_key:
                names.add(fld.data_key)
    return frozenset(names)


def redact(config: Mapping[str, Any], schema: type[marshmallow.Schema]) -> dict[str, Any]:
    """A copy of ``config`` with every secret field's value replaced by ``SECRET_MASK``.

    Empty secrets (``None`` or ``""``) stay as they are, so a display can tell "not set".
    """
    secrets = secret_fields(schema)
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in secrets and value not in (None, ""):
            out[key] = SECRET_MASK
        else:
            out[key] = value
    return out


def load_config(cls: type[Connector], config: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``config`` with ``cls.config_schema``; raise `ConfigError` naming fields."""
    try:
        loaded = cls.config_schema().load(dict(config))
    except marshmallow.ValidationError as exc:
        fields = _flatten_messages(exc.messages)
        summary = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in fields.items())
        raise ConfigError(
            f"invalid configuration for connector {cls.name!r}: {summary}", fields
        ) from None  # the original carries the submitted values, secrets included
    assert isinstance(loaded, dict)
    return loaded


def _flatten_messages(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Marshmallow's nested message structure as ``{"field.sub": [messages]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, Mapping):
                out.update(_flatten_messages(value, name))
            elif isinstance(value, list | tuple):
                out.setdefault(name, []).extend(
                    str(m) for m in value if not isinstance(m, Mapping)
                )
                for m in value:
                    if isinstance(m, Mapping):
                        out.update(_flatten_messages(m, name))
            else:
                out.setdefault(name, []).append(str(value))
    elif isinstance(messages, list | tuple):
        out.setdefault(prefix or "_schema", []).extend(str(m) for m in messages)
    else:
        out.setdefault(prefix or "_schema", []).append(str(messages))
    return out


# ---------------------------------------------------------------------------------------
# The contract
# ---------------------------------------------------------------------------------------


class Connector(ABC):
    """Base of every connector plugin.

    Subclasses set the three class attributes and implement the three methods. The
    constructor validates ``config`` against ``config_schema`` (raising `ConfigError`) and
    keeps the loaded values, defaults filled in, as ``self.config``.
    """

    name: ClassVar[str]  # entry-point name, stable: stored with each connection
    title: ClassVar[str]  # human-readable name for the UI and CLI
    config_schema: ClassVar[type[marshmallow.Schema]]  # the config, secrets marked
    # True for connectors whose configuration reaches far (a database query): only the
    # hub's administrators may create or reconfigure their connections.
    hub_admin_only: ClassVar[bool] = False

    def __init__(self, config: Mapping[str, Any], context: ConnectorContext | None = None):
        self.config: dict[str, Any] = load_config(type(self), config)
        self.context: ConnectorContext = context or ConnectorContext()
        self.log: logging.Logger = self.context.logger

    def __repr__(self) -> str:
        shown = redact(self.config, self.config_schema)
        return f"<{type(self).__name__} {self.name} {shown!r}>"

    @property
    def redacted_config(self) -> dict[str, Any]:
        """The config with secrets masked, safe to show or log."""
        return redact(self.config, self.config_schema)

    @abstractmethod
    def check(self) -> CheckResult:
        """Probe the source; never raises for an unreachable or refusing source."""

    @abstractmethod
    def discover(self) -> Discovery:
        """What the source serves. Raises `ConnectorError` subclasses on failure."""

    @abstractmethod
    def read(self, state: Mapping[str, Any] | None = None) -> Iterator[Batch]:
        """Yield batches from ``state`` (``None``: from the beginning).

        Raises `SourceUnavailable`, `AuthenticationFailed`, `FormatError` or `AccessDenied`;
        batches already yielded stay valid (their states are resumable).
        """
