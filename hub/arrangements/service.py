"""Reference data in the database, and the arrangement services built on it.

`load_reference_data` writes the validated reference files into the database
idempotently: a second run changes nothing; an edited date updates the row and leaves a
`ReferenceChange`. Manual status changes (`suspend`, `resume`, `terminate`) append to an
arrangement's dated status history. Both are transactions of their own
(`hub.db.transactional`). Every change bumps the reference version, so that every
worker's caches see it on their next request and the scheduler's watch records the day's
view changes (`hub.notify.views`): operators entering or leaving a partner's view.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from hub import versions
from hub.arrangements import audit as audit_hooks
from hub.arrangements.models import (
    Arrangement,
    ArrangementDirection,
    ArrangementParty,
    ArrangementStatusChange,
    ReferenceChange,
)
from hub.arrangements.reference import (
    ALL_CATEGORIES,
    ReferenceData,
    default_reference_dir,
    load_reference,
)
from hub.db import transactional
from hub.errors import InvalidInput, NotFound
from hub.registry.models import Administration, Programme

MANUAL_STATUSES = {"suspend": "suspended", "resume": "in_force", "terminate": "terminated"}


@dataclass
class LoadReport:
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)

    def count(self, bucket: dict[str, int], entity: str) -> None:
        bucket[entity] = bucket.get(entity, 0) + 1


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


class _Writer:
    def __init__(self, session: Session, report: LoadReport, actor: str) -> None:
        self.session = session
        self.report = report
        self.actor = actor

    def set_fields(self, entity: str, code: str, row: Any, values: Mapping[str, Any]) -> None:
        changed = False
        for name, new in values.items():
            old = getattr(row, name)
            if _jsonable(old) != _jsonable(new):
                self.session.add(ReferenceChange(entity=entity, code=code, field=name,
                                                 old=_jsonable(old), new=_jsonable(new),
                                                 actor=self.actor))
                self.report.changes.append(f"{entity} {code}: {name} {old!r} -> {new!r}")
                setattr(row, name, new)
                changed = True
        if changed:
            self.report.count(self.report.updated, entity)


_CACHE: dict[tuple[str, float, float], ReferenceData] = {}


def shipped_reference() -> ReferenceData:
    """The shipped reference files, parsed once per process (and again if they change)."""
    directory = default_reference_dir()
    key = (str(directory), (directory / "programmes.yaml").stat().st_mtime,
           (directory / "arrangements.yaml").stat().st_mtime)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = load_reference(directory)
    return _CACHE[key]


@transactional
def load_reference_data(session: Session, data: ReferenceData | None = None, *,
                        actor: str = "reference load") -> LoadReport:
    """Write reference data into the database; idempotent."""
    data = data or shipped_reference()
    report = LoadReport()
    writer = _Writer(session, report, actor)

    admins = {a.code: a for a in session.scalars(select(Administration))}
    for ref in data.administrations.values():
        values: dict[str, Any] = {"name": ref.name, "countries": list(ref.countries),
                  "allowed_hosts": list(ref.allowed_hosts)}
        row = admins.get(ref.code)
        if row is None:
            row = Administration(code=ref.code, **values)
            session.add(row)
            admins[ref.code] = row
            report.count(report.created, "administration")
        else:
            writer.set_fields("administration", ref.code, row, values)
    session.flush()

    programmes = {p.code: p for p in session.scalars(select(Programme))}
    for pref in data.programmes.values():
        values = {
            "name": pref.name,
            "administration_id": admins[pref.administration].id,
            "categories": [{"code": c.code, "description": c.description,
                            "components": list(c.components)} for c in pref.categories],
            "primary_scheme": pref.primary_identifier,
            "stable_key_scheme": pref.stable_key,
            "authorisation_scheme": pref.authorisation_number_scheme,
            "consent_required": pref.consent_required,
            "declaration_codes": [_jsonable(vars(d)) for d in pref.declaration_codes],
            "details": _jsonable({
                "tiers": [{"code": t.code, "description": t.description} for t in pref.tiers],
                "other_identifiers": list(pref.other_identifiers),
                "publishes_list": pref.publishes_list,
                "publication_consent_required": pref.publication_consent_required,
                "validity_years": pref.validity_years,
                "launched": pref.launched,
                "status": pref.status,
                "note": pref.note,
                "source": pref.source,
            }),
        }
        prow = programmes.get(pref.code)
        if prow is None:
            prow = Programme(code=pref.code, **values)
            session.add(prow)
            programmes[pref.code] = prow
            report.count(report.created, "programme")
        else:
            writer.set_fields("programme", pref.code, prow, values)
    session.flush()

    arrangements = {
        a.code: a for a in session.scalars(
            select(Arrangement).options(selectinload(Arrangement.parties),
                                        selectinload(Arrangement.directions),
                                        selectinload(Arrangement.status_changes))
        )
    }
    for aref in data.arrangements.values():
        values = {"title": aref.title, "kind": aref.kind, "signed_on": aref.signed,
                  "in_force_on": aref.in_force, "data_fields": list(aref.data_fields),
                  "benefits": list(aref.benefits), "source": aref.source,
                  "details": _jsonable({"exchange": aref.exchange, "note": aref.note})}
        arow = arrangements.get(aref.code)
        if arow is None:
            arow = Arrangement(code=aref.code, **values)
            session.add(arow)
            report.count(report.created, "arrangement")
        else:
            writer.set_fields("arrangement", aref.code, arow, values)
        _sync_parties(writer, arow, aref, programmes)
        _sync_directions(writer, arow, aref, programmes)
        _sync_status_history(writer, arow, aref)
    session.flush()
    if report.changed:
        versions.bump(session, versions.REFERENCE)
        audit_hooks.reference_loaded(session, report, actor)
    return report


def _sync_parties(writer: _Writer, arow: Arrangement, aref: Any,
                  programmes: Mapping[str, Programme]) -> None:
    joined = {m.programme: m.active_from for m in aref.members}
    existing = {p.programme.code if p.programme else None: p for p in arow.parties}
    for code in aref.parties:
        party = existing.get(code)
        if party is None:
            arow.parties.append(ArrangementParty(programme=programmes[code],
                                                 joined_on=joined.get(code)))
            writer.report.count(writer.report.created, "arrangement party")
        else:
            writer.set_fields("arrangement", f"{aref.code}/{code}", party,
                              {"joined_on": joined.get(code)})


def _sync_directions(writer: _Writer, arow: Arrangement, aref: Any,
                     programmes: Mapping[str, Programme]) -> None:
    existing = {(d.recognising.code, d.recognised.code): d for d in arow.directions
                if d.recognising is not None and d.recognised is not None}
    wanted = set()
    for dref in aref.directions:
        recognised = programmes[dref.recognised]
        categories: list[str] = list(dref.categories)
        if ALL_CATEGORIES in categories:
            categories = recognised.category_codes()
        values: dict[str, Any] = {
            "categories": categories,
            "flows": list(dref.flows),
            "active_from": dref.active_from,
            "active_until": dref.active_until,
            "tiers": list(dref.tiers),
            "note": dref.note,
            "details": _jsonable({"unconfirmed_categories": list(dref.unconfirmed_categories),
                                  "source": dref.source, "derived": dref.derived}),
        }
        key = (dref.recognising, dref.recognised)
        wanted.add(key)
        row = existing.get(key)
        if row is None:
            arow.directions.append(ArrangementDirection(
                recognising=programmes[dref.recognising], recognised=recognised, **values))
            writer.report.count(writer.report.created, "direction")
        else:
            writer.set_fields("direction", f"{aref.code}:{key[0]}>{key[1]}", row, values)
    for key, row in existing.items():
        if key not in wanted:
            arow.directions.remove(row)
            writer.session.add(ReferenceChange(entity="direction",
                                               code=f"{aref.code}:{key[0]}>{key[1]}",
                                               field="(removed)", old=None, new=None,
                                               actor=writer.actor))
            writer.report.count(writer.report.updated, "direction")


def _sync_status_history(writer: _Writer, arow: Arrangement, aref: Any) -> None:
    from_file = {(c.status, c.date) for c in aref.status_history}
    stored = {(c.status, c.effective_date): c for c in arow.status_changes
              if c.origin == "reference"}
    for key, row in stored.items():
        if key not in from_file:
            arow.status_changes.remove(row)
            writer.session.add(ReferenceChange(
                entity="arrangement", code=arow.code, field="status_history",
                old={"status": key[0], "date": key[1].isoformat()}, new=None,
                actor=writer.actor))
            writer.report.changes.append(f"arrangement {arow.code}: dropped {key}")
            writer.report.count(writer.report.updated, "arrangement status")
    for status, date in sorted(from_file - set(stored), key=lambda k: (k[1], k[0])):
        arow.status_changes.append(ArrangementStatusChange(status=status, effective_date=date,
                                                           origin="reference"))
        if stored:  # a correction of an existing arrangement, not its first load
            writer.session.add(ReferenceChange(
                entity="arrangement", code=arow.code, field="status_history", old=None,
                new={"status": status, "date": date.isoformat()}, actor=writer.actor))
            writer.report.changes.append(f"arrangement {arow.code}: added {status} {date}")
        writer.report.count(writer.report.created, "arrangement status")


def get_arrangement(session: Session, code: str) -> Arrangement:
    row = session.scalar(select(Arrangement).where(Arrangement.code == code))
    if row is None:
        raise NotFound(f"arrangement {code} does not exist", fields={"code": "unknown"})
    return row


@transactional
def change_status(session: Session, code: str, action: str, day: dt.date, *,
                  note: str | None = None, actor: str = "cli") -> ArrangementStatusChange:
    """Record that arrangement `code` is suspended, resumed or terminated from `day`."""
    if action not in MANUAL_STATUSES:
        raise InvalidInput(f"unknown action {action!r}", fields={"action": "unknown"})
    arrangement = get_arrangement(session, code)
    status = MANUAL_STATUSES[action]
    current = arrangement.status_on(day)
    if current == "terminated":
        raise InvalidInput(f"arrangement {code} is terminated on {day}; it cannot be {action}d",
                           fields={"date": "after termination"})
    if action == "resume" and current != "suspended":
        raise InvalidInput(f"arrangement {code} is not suspended on {day} (it is {current})",
                           fields={"date": "not suspended"})
    change = ArrangementStatusChange(status=status, effective_date=day, origin="manual",
                                     note=note)
    arrangement.status_changes.append(change)
    session.add(ReferenceChange(entity="arrangement", code=code, field="status",
                                old=current, new={"status": status, "date": day.isoformat()},
                                actor=actor))
    session.flush()
    versions.bump(session, versions.REFERENCE)
    audit_hooks.arrangement_status_changed(session, arrangement, change, current, actor)
    return change


def list_arrangements(session: Session, *, programme: str | None = None) -> list[Arrangement]:
    query = select(Arrangement).options(
        selectinload(Arrangement.parties).selectinload(ArrangementParty.programme),
        selectinload(Arrangement.directions).selectinload(ArrangementDirection.recognising),
        selectinload(Arrangement.directions).selectinload(ArrangementDirection.recognised),
        selectinload(Arrangement.status_changes),
    ).order_by(Arrangement.code)
    rows = list(session.scalars(query))
    if programme:
        rows = [a for a in rows if any(p.programme.code == programme for p in a.parties)]
    return rows
