"""Connection management: add, edit, show (secrets redacted), build the connector.

A connection may read local files only inside the configured import directory and URLs
only on the hosts its administration allows (plus `NODE_HOSTS_ALLOWED` from the hub's
configuration), so that nobody can read the hub's own database or probe internal hosts
through a connection. Config is validated by the connector's own schema before anything
is stored; secret fields are encrypted at rest.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.base import (
    SECRET_MASK,
    AccessDenied,
    ConfigError,
    Connector,
    ConnectorContext,
    secret_fields,
)
from connectors.base import load_config as load_connector_config
from connectors.catalogue import available_connectors
from hub import clock, versions
from hub.db import MAX_ID, transactional
from hub.errors import Conflict, InvalidInput, NotFound
from hub.identifiers.countries import ADDRESS_COUNTRIES
from hub.registry.models import Programme
from hub.sync import audit as audit_hooks
from hub.sync import secrets
from hub.sync.models import Connection

CONNECTIONS = "connections"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: The longest `interval:` a schedule may have. The scheduler counts fire times from an
#: anchor in 2000 and looks a year back for a cron schedule's latest fire; an interval
#: of centuries overflows its dates (and one of a year and a day is already a typo).
MAX_INTERVAL = dt.timedelta(days=366)
#: The longest staleness a connection may declare (about three years, as the API allows).
MAX_STALENESS_SECONDS = 10**8
#: The values each of a connection's limits accepts, bounds included: the guard shares
#: are fractions (0.1 is 10 %), the counts whole numbers that fit the database's integer.
LIMITS: dict[str, tuple[str, float, float]] = {
    "max_removal_share": ("share", 0.0, 1.0),
    "max_change_share": ("share", 0.0, 1.0),
    "max_quarantine_share": ("share", 0.0, 1.0),
    "max_quarantined": ("count", 0, MAX_ID),
    "staleness_seconds": ("count", 1, MAX_STALENESS_SECONDS),
}


@dataclass(frozen=True)
class SyncSettings:
    """The parts of the hub's configuration that the sync engine needs."""

    fernet: Fernet
    import_dir: Path | None
    extra_hosts: frozenset[str]
    default_staleness: int
    lease_seconds: int = 60
    database_url: str | None = None  # the hub's own database, which no connection may read

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SyncSettings:
        import_dir = config.get("IMPORT_DIR")
        return cls(
            fernet=secrets.fernet_for(config.get("ENCRYPTION_KEY"), config["SECRET_KEY"]),
            import_dir=Path(import_dir) if import_dir else None,
            extra_hosts=frozenset(config.get("NODE_HOSTS_ALLOWED") or ()),
            default_staleness=int(config.get("DEFAULT_STALENESS_SECONDS", 36 * 3600)),
            lease_seconds=int(config.get("SYNC_LEASE_SECONDS", 60)),
            database_url=config.get("DATABASE_URL"),
        )


def parse_schedule(text: str) -> tuple[str, Any]:
    """`interval:90s|15m|1h|1d` or `cron:<five crontab fields>`."""
    kind, _, spec = text.partition(":")
    spec = spec.strip()
    if kind == "interval":
        unit = spec[-1:].lower()
        number = spec[:-1]
        digits = number.lstrip("0")
        if unit not in _UNITS or not number.isascii() or not number.isdigit() or not digits:
            raise InvalidInput(f"schedule {text!r}: an interval is a positive number with "
                               "a unit s, m, h or d, e.g. interval:1h",
                               fields={"schedule": "invalid interval"})
        longest = int(MAX_INTERVAL.total_seconds())
        # the length test first: int() refuses numbers of thousands of digits
        if len(digits) > len(str(longest)) or int(digits) * _UNITS[unit] > longest:
            raise InvalidInput(f"schedule {text!r}: an interval may be at most "
                               f"{MAX_INTERVAL.days} days (interval:{MAX_INTERVAL.days}d)",
                               fields={"schedule": f"interval longer than "
                                                   f"{MAX_INTERVAL.days} days"})
        return "interval", int(digits) * _UNITS[unit]
    if kind == "cron":
        try:
            parts = spec.split()
            if len(parts) == 5:  # else from_crontab says what is wrong
                parts[4] = crontab_weekdays(parts[4])
                minute, hour, days, month, weekdays = parts
                if not days.startswith("*") and not weekdays.startswith("*"):
                    # crontab runs on either day when both are restricted; APScheduler's
                    # CronTrigger only on days that are both
                    return "cron", OrTrigger([
                        CronTrigger.from_crontab(f"{minute} {hour} {days} {month} *",
                                                 timezone="UTC"),
                        CronTrigger.from_crontab(f"{minute} {hour} * {month} {weekdays}",
                                                 timezone="UTC")])
            return "cron", CronTrigger.from_crontab(" ".join(parts), timezone="UTC")
        except ValueError as exc:
            raise InvalidInput(f"schedule {text!r}: {exc}",
                               fields={"schedule": "invalid cron expression"}) from exc
    raise InvalidInput(f"schedule {text!r} must start with interval: or cron:",
                       fields={"schedule": "expected interval:... or cron:..."})


_WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NUMERIC_DAYS = re.compile(r"(?P<lo>[0-7])(?:-(?P<hi>[0-7]))?|\*")


def crontab_weekdays(field: str) -> str:
    """A crontab day-of-week field with its numbers as day names, as crontab reads them
    (0 and 7 are Sunday, 1 Monday): APScheduler 3 counts numbers from Monday, so
    `0 3 * * 0` would otherwise run on Mondays. Names are kept as written."""
    out: list[str] = []
    for part in field.split(","):
        base, slash, step_text = part.partition("/")
        found = _NUMERIC_DAYS.fullmatch(base)
        if found is None or (base == "*" and not slash) or (slash and not step_text.isdigit()):
            out.append(part)
            continue
        lo, hi = (0, 6) if base == "*" else (int(found["lo"]), int(found["hi"] or found["lo"]))
        if lo > hi or (slash and int(step_text) <= 0):
            out.append(part)  # from_crontab refuses it
            continue
        for day in range(lo, hi + 1, int(step_text) if slash else 1):
            if _WEEKDAY_NAMES[day] not in out:
                out.append(_WEEKDAY_NAMES[day])
    return ",".join(out)


def checked_snapshot_schedule(text: str | None) -> str | None:
    """A checked snapshot schedule (same syntax as `schedule`); empty or `none`: never."""
    text = (text or "").strip()
    if not text or text.lower() == "none":
        return None
    try:
        parse_schedule(text)
    except InvalidInput as exc:
        raise InvalidInput(f"snapshot {exc.detail}",
                           fields={"snapshot_schedule": exc.fields.get("schedule", [])}
                           ) from exc
    return text


def check_limits(**limits: float | None) -> None:
    """Refuse a connection's guard shares outside 0..1, a negative or huge quarantine
    count and a staleness that is not a positive number of seconds (see `LIMITS`; None:
    not given), naming every field that is wrong in one error. Every way of adding or
    editing a connection passes here, so the command line cannot store a guard that
    holds every sync ("more than the -100 % allowed")."""
    problems: list[str] = []
    errors: dict[str, str] = {}
    for name, value in limits.items():
        if value is None:
            continue
        kind, low, high = LIMITS[name]
        if kind == "share" and not low <= value <= high:  # NaN fails too
            problems.append(f"{name} {value:g} is not a share from 0 to 1 (0.1 is 10 %)")
            errors[name] = "expected a share from 0 to 1"
        elif kind == "count" and not (float(value).is_integer() and low <= value <= high):
            problems.append(f"{name} {value} is not a whole number from {low:.0f} to "
                            f"{high:.0f}")
            errors[name] = f"expected a whole number from {low:.0f} to {high:.0f}"
    if problems:
        raise InvalidInput("; ".join(problems), fields=errors)


def connector_context(settings: SyncSettings, hosts: Iterable[str] = ()) -> ConnectorContext:
    """What a connector may reach: `hosts` (an administration's) and the hub's
    `NODE_HOSTS_ALLOWED`, no other (an empty list allows no host); files under the
    import directory; never the hub's own database."""
    return ConnectorContext(allowed_hosts=frozenset({*hosts, *settings.extra_hosts}),
                            import_dir=settings.import_dir, user_agent="aeohub-sync/1",
                            refused_databases=frozenset(filter(None, [settings.database_url])))


def context_for(connection: Connection, settings: SyncSettings) -> ConnectorContext:
    return connector_context(settings, connection.administration.allowed_hosts or ())


def _check_access(cls: type[Connector], config: Mapping[str, Any],
                  context: ConnectorContext) -> None:
    try:
        check_own = getattr(cls, "check_access", None)
        if check_own is not None:  # a source that is not a file or web URL (a database)
            check_own(cls(dict(config), context))
            return
        for key in ("url", "base_url"):
            if config.get(key):
                context.check_url(str(config[key]))
        if config.get("path"):
            if context.import_dir is None:
                raise AccessDenied("this hub has no import directory: local files cannot be "
                                   "read (set AEOHUB_IMPORT_DIR)")
            context.check_path(str(config["path"]))
    except AccessDenied as exc:
        field = "path" if config.get("path") else ("url" if config.get("url") else "base_url")
        raise InvalidInput(str(exc), fields={f"config.{field}": str(exc)}) from exc


def _validated(connector_type: str, config: Mapping[str, Any]) -> type[Connector]:
    connectors = available_connectors()
    cls = connectors.get(connector_type)
    if cls is None:
        raise InvalidInput(f"no connector named {connector_type!r} (available: "
                           f"{', '.join(sorted(connectors))})", fields={"type": "unknown"})
    try:
        load_connector_config(cls, config)
    except ConfigError as exc:
        raise InvalidInput(f"invalid config for {connector_type}: {exc}",
                           fields={f"config.{k}": v for k, v in exc.fields.items()}) from exc
    return cls


def _programmes(session: Session, codes: list[str]) -> list[Programme]:
    if not codes:
        raise InvalidInput("a connection needs at least one programme",
                           fields={"programme": "required"})
    # a programme given twice is a mistake in the request, not a wish to store it twice
    seen: set[str] = set()
    repeated: set[str] = set()
    for code in codes:
        (repeated if code in seen else seen).add(code)
    if repeated:
        listed = ", ".join(sorted(repeated))
        raise InvalidInput(f"programmes: {listed} given more than once",
                           fields={"programmes": f"repeated: {listed}"})
    rows = {p.code: p for p in session.scalars(select(Programme).where(Programme.code.in_(codes)))}
    missing = [c for c in codes if c not in rows]
    if missing:
        raise InvalidInput(f"unknown programme(s): {', '.join(missing)}",
                           fields={"programme": f"unknown: {', '.join(missing)}"})
    admins = {rows[c].administration_id for c in codes}
    if len(admins) > 1:
        raise InvalidInput("a connection's programmes must belong to one administration",
                           fields={"programme": "several administrations"})
    return [rows[c] for c in codes]


def _countries(countries: list[str] | None) -> list[str]:
    out = sorted({str(c).strip().upper() for c in countries or ()})
    bad = [c for c in out if c not in ADDRESS_COUNTRIES]
    if bad:
        raise InvalidInput(f"scope: {', '.join(bad)} are not ISO 3166 alpha-2 country codes",
                           fields={"scope_countries": "expected two-letter country codes"})
    return out


def check_overlap(session: Session, connection: Connection) -> None:
    """Refuse a second enabled connection on a programme unless the two declare disjoint
    scopes: their snapshots would otherwise remove each other's operators, or overwrite
    each other on every sync."""
    if not connection.enabled:
        return
    mine = set(connection.scope_countries or ())
    others = session.scalars(select(Connection).where(
        Connection.enabled.is_(True), Connection.id != connection.id)).all()
    for other in others:
        shared = set(connection.programmes) & set(other.programmes)
        if not shared:
            continue
        theirs = set(other.scope_countries or ())
        if mine and theirs and not (mine & theirs):
            continue
        overlap = ", ".join(sorted(mine & theirs)) if mine and theirs else "every country"
        raise Conflict(
            f"connection {other.name!r} already syncs {', '.join(sorted(shared))} "
            f"(overlapping scope: {overlap}); give the two connections disjoint scopes "
            "(scope countries) or disable one",
            fields={"programme": f"already synced by {other.name}"})


@transactional
def add_connection(session: Session, settings: SyncSettings, *, name: str,
                   connector_type: str, programmes: list[str], config: Mapping[str, Any],
                   schedule: str, staleness_seconds: int | None = None,
                   enabled: bool = True, scope_countries: list[str] | None = None,
                   snapshot_schedule: str | None = None,
                   max_removal_share: float | None = None,
                   max_change_share: float | None = None,
                   max_quarantine_share: float | None = None,
                   max_quarantined: int | None = None) -> Connection:
    """Add a connection; a guard or staleness not given takes the hub's default. Its name
    is unique within its administration (that of its programmes)."""
    guards = {"max_removal_share": max_removal_share, "max_change_share": max_change_share,
              "max_quarantine_share": max_quarantine_share,
              "max_quarantined": max_quarantined}
    check_limits(staleness_seconds=staleness_seconds, **guards)
    parse_schedule(schedule)
    snapshots = checked_snapshot_schedule(snapshot_schedule)
    rows = _programmes(session, programmes)
    if session.scalar(select(Connection.id).where(
            Connection.administration_id == rows[0].administration_id,
            Connection.name == name)) is not None:
        raise Conflict(f"a connection named {name!r} exists", fields={"name": "taken"})
    cls = _validated(connector_type, config)
    secret_names = secret_fields(cls.config_schema)
    plain = {k: v for k, v in config.items() if k not in secret_names}
    hidden = {k: v for k, v in config.items() if k in secret_names}
    connection = Connection(
        name=name, administration_id=rows[0].administration_id, connector_type=connector_type,
        programmes=programmes, config=plain,
        secrets_encrypted=secrets.encrypt(settings.fernet, hidden), schedule=schedule,
        snapshot_schedule=snapshots, enabled=enabled, state={},
        staleness_seconds=settings.default_staleness if staleness_seconds is None
        else staleness_seconds,
        scope_countries=_countries(scope_countries),
        **{attr: value for attr, value in guards.items() if value is not None},
    )
    check_overlap(session, connection)
    session.add(connection)
    session.flush()
    _check_access(cls, config, context_for(connection, settings))
    versions.bump(session, CONNECTIONS)
    audit_hooks.connection_changed(session, connection, "added",
                                   shown_config(connection))
    return connection


def merge_config(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``changes`` merged into ``current``: nested objects merge key by key (so that
    ``{"elements": {"categories": "Kategorien"}}`` changes one element name and keeps the
    others); any other value, lists and ``null`` included, replaces the current one."""
    merged = dict(current)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_config(merged[key], value)
        else:
            merged[key] = value
    return merged


def config_difference(before: Mapping[str, Any], after: Mapping[str, Any],
                      secret_names: frozenset[str]) -> list[str]:
    """What an edit changed, one line per setting (``+`` added, ``-`` removed, ``~``
    changed; nested settings as ``elements.categories``), secret values masked."""
    lines: list[str] = []

    def shown(key: str, value: Any) -> str:
        top = key.split(".", 1)[0]
        if top in secret_names and value not in (None, ""):
            return SECRET_MASK
        return json.dumps(value, ensure_ascii=False, sort_keys=True)

    def walk(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str) -> None:
        for key in sorted(set(old) | set(new), key=str):
            name = f"{prefix}{key}"
            if key not in new:
                lines.append(f"- {name}: {shown(name, old[key])}")
            elif key not in old:
                lines.append(f"+ {name}: {shown(name, new[key])}")
            elif isinstance(old[key], Mapping) and isinstance(new[key], Mapping) and \
                    name.split(".", 1)[0] not in secret_names:
                walk(old[key], new[key], f"{name}.")
            elif old[key] != new[key]:
                lines.append(f"~ {name}: {shown(name, old[key])} -> {shown(name, new[key])}")

    walk(before, after, "")
    return lines


@transactional
def edit_connection(session: Session, settings: SyncSettings, connection: Connection, *,
                    config: Mapping[str, Any] | None = None, replace_config: bool = False,
                    schedule: str | None = None,
                    enabled: bool | None = None, staleness_seconds: int | None = None,
                    max_removal_share: float | None = None,
                    max_change_share: float | None = None,
                    max_quarantine_share: float | None = None,
                    max_quarantined: int | None = None,
                    scope_countries: list[str] | None = None,
                    snapshot_schedule: str | None = None) -> Connection:
    """Change what is given (None: unchanged); an empty `snapshot_schedule` (or `none`)
    stops the scheduled snapshots."""
    check_limits(staleness_seconds=staleness_seconds, max_removal_share=max_removal_share,
                 max_change_share=max_change_share,
                 max_quarantine_share=max_quarantine_share, max_quarantined=max_quarantined)
    if schedule is not None:
        parse_schedule(schedule)
        connection.schedule = schedule
    if snapshot_schedule is not None:
        connection.snapshot_schedule = checked_snapshot_schedule(snapshot_schedule)
    if config is not None:
        current = full_config(connection, settings)
        if replace_config:
            # the secrets, which nobody can read back to repeat them, are kept
            cls = available_connectors().get(connection.connector_type)
            kept = secret_fields(cls.config_schema) if cls else frozenset()
            merged = {**{k: v for k, v in current.items() if k in kept}, **config}
        else:
            merged = merge_config(current, config)
        cls = _validated(connection.connector_type, merged)
        _check_access(cls, merged, context_for(connection, settings))
        secret_names = secret_fields(cls.config_schema)
        connection.config = {k: v for k, v in merged.items() if k not in secret_names}
        connection.secrets_encrypted = secrets.encrypt(
            settings.fernet, {k: v for k, v in merged.items() if k in secret_names})
    for attr, value in (("enabled", enabled), ("staleness_seconds", staleness_seconds),
                        ("max_removal_share", max_removal_share),
                        ("max_change_share", max_change_share),
                        ("max_quarantine_share", max_quarantine_share),
                        ("max_quarantined", max_quarantined)):
        if value is not None:
            setattr(connection, attr, value)
    if scope_countries is not None:
        connection.scope_countries = _countries(scope_countries)
    with session.no_autoflush:
        check_overlap(session, connection)
    connection.updated_at = clock.now()
    versions.bump(session, CONNECTIONS)
    audit_hooks.connection_changed(session, connection, "edited",
                                   shown_config(connection))
    return connection


@transactional
def remove_connection(session: Session, connection: Connection) -> None:
    audit_hooks.connection_changed(session, connection, "removed",
                                   shown_config(connection))
    session.delete(connection)
    versions.bump(session, CONNECTIONS)


def get_connection(session: Session, ref: str | int, *,
                   administration_id: int | None = None) -> Connection:
    """The connection named `ref`, or whose id it is; only among `administration_id`'s
    when given. Only ASCII digits from 1 to `MAX_ID` can be an id: any other number names
    no row (and one beyond the database's integer would fail in the driver), so it is
    looked up as a name only. Names are unique within an administration: a name that
    several administrations use is ambiguous across the hub (give the id)."""
    text = str(ref)
    # the length test first: int() refuses numbers of thousands of digits
    is_id = (text.isascii() and text.isdigit() and len(text.lstrip("0")) <= len(str(MAX_ID))
             and 1 <= int(text) <= MAX_ID)
    query = select(Connection).order_by(Connection.id)
    if administration_id is not None:
        query = query.where(Connection.administration_id == administration_id)
    if is_id:
        by_id = session.scalar(query.where(Connection.id == int(text)))
        if by_id is not None:
            return by_id
    named = session.scalars(query.where(Connection.name == text)).all()
    if not named:
        raise NotFound(f"no connection {ref!r}", fields={"connection": "unknown"})
    if len(named) > 1:
        which = ", ".join(f"{row.id} ({row.administration.code})" for row in named)
        raise InvalidInput(f"{len(named)} connections are named {text!r}: give the id of "
                           f"the one meant ({which})", fields={"connection": "ambiguous"})
    return named[0]


def full_config(connection: Connection, settings: SyncSettings) -> dict[str, Any]:
    return {**connection.config, **secrets.decrypt(settings.fernet,
                                                   connection.secrets_encrypted)}


def secret_names(connection: Connection) -> frozenset[str]:
    """The names of the secret settings of a connection's connector."""
    cls = available_connectors().get(connection.connector_type)
    return secret_fields(cls.config_schema) if cls else frozenset()


def shown_config(connection: Connection) -> dict[str, Any]:
    """The config safe to show: secrets as "********"."""
    cls = available_connectors().get(connection.connector_type)
    names = secret_fields(cls.config_schema) if cls else frozenset()
    return {**connection.config, **{name: "********" for name in names
                                    if connection.secrets_encrypted}}


def build(connection: Connection, settings: SyncSettings) -> Connector:
    cls = available_connectors().get(connection.connector_type)
    if cls is None:
        raise NotFound(f"connector {connection.connector_type!r} is not installed")
    return cls(full_config(connection, settings), context_for(connection, settings))


def feed_age(connection: Connection, now: dt.datetime | None = None) -> float | None:
    if connection.last_success_at is None:
        return None
    return ((now or clock.now()) - connection.last_success_at).total_seconds()


def is_stale(connection: Connection, now: dt.datetime | None = None) -> bool:
    age = feed_age(connection, now)
    return age is None or age > connection.staleness_seconds


#: A failing connection waits 30 s after its first failure, doubling with each failure
#: in a row, at most 6 h.
BACKOFF_BASE = dt.timedelta(seconds=30)
BACKOFF_MAX = dt.timedelta(hours=6)


def backoff_until(connection: Connection, now: dt.datetime | None = None
                  ) -> dt.datetime | None:
    """When a failing connection may be tried again: None when it is not backing off at
    `now` (exponential, capped; the scheduler's fires and catch-ups wait for it). A
    disabled connection runs nothing, so it does not back off either."""
    if (not connection.enabled or connection.consecutive_failures <= 0
            or connection.last_failure_at is None):
        return None
    # (the doubling stops at 2**16, past the cap: a node down for weeks overflows nothing)
    doubled = BACKOFF_BASE * 2 ** min(connection.consecutive_failures - 1, 16)
    delay: dt.timedelta = min(doubled, BACKOFF_MAX)
    until = connection.last_failure_at + delay
    return until if until > (now or clock.now()) else None
