"""Registry services: apply a normalised record, read state as of a date, find operators.

`apply_operator` is the one-operator path (tests, manual corrections, replays); the sync
pipeline writes the same events in bulk through `hub.registry.history`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import clock
from hub.errors import NotFound
from hub.registry import history
from hub.registry.models import Operator, OperatorEvent, OperatorIdentifier, Programme

#: Operator columns that a source record sets.
RECORD_COLUMNS = (
    "authorisation_number",
    "trader_id_scheme",
    "trader_id",
    "legal_name",
    "street",
    "city",
    "postcode",
    "region",
    "country",
    "status",
    "status_effective",
    "categories",
    "issuing_authority",
    "authorised_on",
    "valid_from",
    "valid_until",
    "consent_share",
    "consent_publish",
    "source_changed_at",
    "fingerprint",
    "warnings",
)


@dataclass
class OperatorData:
    """A validated, normalised source record, ready to be applied."""

    stable_key: str
    values: dict[str, Any]
    # (scheme, normalised value, origin, linked)
    identifiers: list[tuple[str, str, str, bool]] = field(default_factory=list)


@dataclass
class ApplyResult:
    operator: Operator
    outcome: str  # created | updated | unchanged | restored
    events: list[OperatorEvent]


def current_values(operator: Operator) -> dict[str, Any]:
    values = {name: getattr(operator, name) for name in RECORD_COLUMNS}
    values["listed"] = operator.removed_at is None
    return values


def _event_row(operator_id: int, spec: history.EventSpec, *, recorded_at: dt.datetime,
               source: str | None, run_id: int | None) -> OperatorEvent:
    return OperatorEvent(
        operator_id=operator_id,
        kind=spec.kind,
        effective_date=spec.effective_date,
        recorded_at=recorded_at,
        changes=spec.changes,
        previous=spec.previous,
        source=source,
        sync_run_id=run_id,
    )


def _last_effective(specs: Sequence[history.EventSpec], before: dt.date | None) -> dt.date:
    dates = [s.effective_date for s in specs]
    if before is not None:
        dates.append(before)
    return max(dates)


def replace_identifiers(operator: Operator, identifiers: Iterable[tuple[str, str, str, bool]]
                        ) -> None:
    wanted = {(s, v, o): linked for s, v, o, linked in identifiers}
    existing = {(i.scheme, i.value, i.origin): i for i in operator.identifiers}
    for key, ident in existing.items():
        if key not in wanted:
            operator.identifiers.remove(ident)
        else:
            ident.linked = wanted[key]
    for (scheme, value, origin), linked in wanted.items():
        if (scheme, value, origin) not in existing:
            operator.identifiers.append(
                OperatorIdentifier(scheme=scheme, value=value, origin=origin, linked=linked)
            )


def apply_operator(
    session: Session,
    programme: Programme,
    data: OperatorData,
    *,
    now: dt.datetime | None = None,
    source: str | None = None,
    run_id: int | None = None,
) -> ApplyResult:
    """Create or update one operator from a record, appending its history events."""
    now = now or clock.now()
    today = now.date()
    operator = session.scalar(
        select(Operator).where(
            Operator.programme_id == programme.id, Operator.stable_key == data.stable_key
        )
    )
    if operator is None:
        operator = Operator(programme_id=programme.id, stable_key=data.stable_key,
                            created_at=now, updated_at=now, source=source)
        for name, value in data.values.items():
            setattr(operator, name, value)
        specs = history.creation_events(data.values, today)
        operator.last_effective = _last_effective(specs, None)
        replace_identifiers(operator, data.identifiers)
        session.add(operator)
        session.flush()
        outcome = "created"
    else:
        specs = history.update_events(current_values(operator), data.values, today)
        restored = operator.removed_at is not None
        for name, value in data.values.items():
            setattr(operator, name, value)
        replace_identifiers(operator, data.identifiers)
        operator.removed_at = None
        if specs:
            operator.updated_at = now
            operator.last_effective = _last_effective(specs, operator.last_effective)
        outcome = "restored" if restored else ("updated" if specs else "unchanged")
    events = [_event_row(operator.id, s, recorded_at=now, source=source, run_id=run_id)
              for s in specs]
    session.add_all(events)
    session.flush()
    return ApplyResult(operator, outcome, events)


def remove_operator(session: Session, operator: Operator, *, now: dt.datetime | None = None,
                    source: str | None = None, run_id: int | None = None) -> OperatorEvent:
    """Mark an operator as no longer listed by its source (not a status change)."""
    now = now or clock.now()
    spec = history.removal_event(now.date())
    operator.removed_at = now
    operator.updated_at = now
    operator.last_effective = _last_effective([spec], operator.last_effective)
    event = _event_row(operator.id, spec, recorded_at=now, source=source, run_id=run_id)
    session.add(event)
    session.flush()
    return event


def recorded_events(session: Session, operator_ids: Iterable[int]
                    ) -> dict[int, list[history.RecordedEvent]]:
    """History of several operators in one query, keyed by operator id."""
    ids = list(operator_ids)
    result: dict[int, list[history.RecordedEvent]] = {i: [] for i in ids}
    for chunk_start in range(0, len(ids), 5000):
        chunk = ids[chunk_start:chunk_start + 5000]
        rows = session.execute(
            select(OperatorEvent.operator_id, OperatorEvent.id, OperatorEvent.kind,
                   OperatorEvent.effective_date, OperatorEvent.recorded_at,
                   OperatorEvent.changes)
            .where(OperatorEvent.operator_id.in_(chunk))
        )
        for op_id, ev_id, kind, eff, rec, changes in rows:
            result[op_id].append(history.RecordedEvent(ev_id, kind, eff, rec, changes))
    return result


def facts_on_many(
    session: Session,
    operators: Sequence[Operator],
    day: dt.date,
    known_at: dt.datetime | None = None,
) -> dict[int, history.OperatorFacts | None]:
    """State of each operator on `day` as known at `known_at`, reading history only when
    needed (a current-date question is answered from the current rows)."""
    states: dict[int, history.OperatorFacts | None] = {}
    need_history = []
    for operator in operators:
        if known_at is None and operator.last_effective is not None and (
            day >= operator.last_effective
        ):
            states[operator.id] = history.facts_from_current(operator)
        else:
            need_history.append(operator.id)
    if need_history:
        for op_id, events in recorded_events(session, need_history).items():
            states[op_id] = history.facts_at(events, day, known_at)
    return states


def facts_on(session: Session, operator: Operator, day: dt.date,
             known_at: dt.datetime | None = None) -> history.OperatorFacts | None:
    return facts_on_many(session, [operator], day, known_at)[operator.id]


def get_operator(session: Session, operator_id: int) -> Operator:
    operator = session.get(Operator, operator_id)
    if operator is None:
        raise NotFound(f"operator {operator_id} does not exist")
    return operator


def find_by_identifier(session: Session, scheme: str, value: str, *,
                       declared_only: bool = True) -> list[Operator]:
    """Operators holding identifier (scheme, normalised value).

    Only declared identifiers identify an operator; derived ones (a MID the hub built
    from name and address) are matching hints and are left out unless asked for.
    """
    query = (
        select(Operator)
        .join(OperatorIdentifier, OperatorIdentifier.operator_id == Operator.id)
        .where(OperatorIdentifier.scheme == scheme, OperatorIdentifier.value == value)
        .order_by(Operator.id)
    )
    if declared_only:
        query = query.where(OperatorIdentifier.origin == "declared",
                            OperatorIdentifier.linked.is_(True))
    return list(session.scalars(query).unique())


def operator_history(session: Session, operator_id: int) -> list[OperatorEvent]:
    return list(session.scalars(
        select(OperatorEvent).where(OperatorEvent.operator_id == operator_id)
        .order_by(OperatorEvent.recorded_at, OperatorEvent.id)
    ))


def programmes_by_code(session: Session) -> Mapping[str, Programme]:
    return {p.code: p for p in session.scalars(select(Programme))}
