"""Bitemporal history: which facts held on day D, as the hub knew them at time T.

Every `OperatorEvent` asserts "from `effective_date` on, these fields have these values",
recorded at `recorded_at`. The value of a field on day D as known at T is the one from the
latest-recorded assertion (recorded at or before T) whose effective date is on or before
D. That rule reads forward histories naturally and lets a late correction (a revocation
reported with an earlier effective date) override what was recorded before it, for the
dates it covers, while "as known at" queries still return what the hub said earlier.

A calendar date is the unit of valid time: a change effective on day D holds for all of D.
Annulment is retroactive: once the hub knows of it, the authorisation never existed on
any date; before that (in transaction time) the earlier answers stand.

This module also turns a source record into the events that describe it (`creation_events`,
`update_events`), so that the sync pipeline and the service write history the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Fields whose history is kept, grouped by the event kind that changes them.
STATUS_FIELDS = ("status", "status_effective")
CATEGORY_FIELDS = ("categories",)
CONSENT_FIELDS = ("consent_share", "consent_publish")
DETAIL_FIELDS = (
    "authorisation_number",
    "legal_name",
    "street",
    "city",
    "postcode",
    "region",
    "country",
    "issuing_authority",
    "authorised_on",
    "valid_from",
    "valid_until",
)
LISTING_FIELDS = ("listed",)
TRACKED_FIELDS = STATUS_FIELDS + CATEGORY_FIELDS + CONSENT_FIELDS + DETAIL_FIELDS + LISTING_FIELDS
DATE_FIELDS = frozenset({"status_effective", "authorised_on", "valid_from", "valid_until"})
_INITIAL_FIELDS = DETAIL_FIELDS + CONSENT_FIELDS


@dataclass(frozen=True)
class EventSpec:
    """An event to append: kind, effective date, the fields it sets and their old values."""

    kind: str
    effective_date: dt.date
    changes: dict[str, Any]
    previous: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedEvent:
    """The parts of a stored event that as-of queries read."""

    id: int
    kind: str
    effective_date: dt.date
    recorded_at: dt.datetime
    changes: Mapping[str, Any]


@dataclass(frozen=True)
class OperatorFacts:
    """An operator's facts on one day, as known at one time.

    `exists` is False before the authorisation began and, once an annulment is known, on
    every date. `annulled` says why it does not exist in the latter case.
    """

    exists: bool
    annulled: bool
    listed: bool
    status: str | None
    status_effective: dt.date | None
    categories: tuple[Mapping[str, Any], ...]
    consent_share: bool
    consent_publish: bool
    details: Mapping[str, Any]
    began: dt.date | None

    def component_status(self, code: str) -> str | None:
        for category in self.categories:
            if category.get("code") == code:
                return str(category.get("status"))
        return None


def _json_value(name: str, value: Any) -> Any:
    if name in DATE_FIELDS and isinstance(value, dt.date):
        return value.isoformat()
    return value


def _python_value(name: str, value: Any) -> Any:
    if name in DATE_FIELDS and isinstance(value, str):
        return dt.date.fromisoformat(value)
    return value


def _parse_date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def to_event_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Field values in their JSON form (dates as ISO strings), in the same order."""
    out = dict(values)
    for name in DATE_FIELDS.intersection(out):
        value = out[name]
        if isinstance(value, dt.date):
            out[name] = value.isoformat()
    return out


def facts_at(
    events: Iterable[RecordedEvent],
    day: dt.date,
    known_at: dt.datetime | None = None,
) -> OperatorFacts | None:
    """The operator's state on `day` as known at `known_at` (None: now).

    Returns None when the hub knew nothing of the operator at `known_at`.
    """
    known = [e for e in events if known_at is None or e.recorded_at <= known_at]
    if not known:
        return None
    known.sort(key=lambda e: (e.recorded_at, e.id))
    began = min(
        (e.effective_date for e in known if e.kind == "created"),
        default=min(e.effective_date for e in known),
    )
    annulled = any(e.changes.get("status") == "annulled" for e in known)
    values: dict[str, Any] = {}
    for event in known:  # in recorded order: later assertions override earlier ones
        if event.effective_date <= day:
            values.update(event.changes)
    exists = not annulled and day >= began
    if annulled:
        # Valid time: it never existed. Keep the latest details for display.
        latest: dict[str, Any] = {}
        for event in known:
            latest.update(event.changes)
        values = {**latest, "status": "annulled"}
    details = {name: _python_value(name, values.get(name)) for name in DETAIL_FIELDS}
    return OperatorFacts(
        exists=exists,
        annulled=annulled,
        listed=bool(values.get("listed", True)),
        status=values.get("status"),
        status_effective=_parse_date(values.get("status_effective")),
        categories=tuple(values.get("categories") or ()),
        consent_share=bool(values.get("consent_share", False)),
        consent_publish=bool(values.get("consent_publish", False)),
        details=details,
        began=began,
    )


def facts_from_current(row: Any) -> OperatorFacts:
    """The state held by an operator's current row (valid from its last effective date)."""
    return OperatorFacts(
        exists=row.status != "annulled",
        annulled=row.status == "annulled",
        listed=row.removed_at is None,
        status=row.status,
        status_effective=row.status_effective,
        categories=tuple(row.categories or ()),
        consent_share=bool(row.consent_share),
        consent_publish=bool(row.consent_publish),
        details={name: getattr(row, name) for name in DETAIL_FIELDS},
        began=row.authorised_on or row.valid_from,
    )


# --- turning records into events -------------------------------------------------------


def _start_date(values: Mapping[str, Any], today: dt.date) -> dt.date:
    for name in ("authorised_on", "valid_from"):
        value = _parse_date(values.get(name))
        if value is not None:
            return min(value, today)
    return today


def _categories_since(categories: Sequence[Mapping[str, Any]],
                      sinces: Sequence[dt.date | None], day: dt.date, start: dt.date
                      ) -> list[dict[str, Any]]:
    """Reconstruct the components on `day` from each one's current status and `since`
    (`sinces`: each category's `since`, parsed).

    A valid component whose `since` is later than `day` was granted later (not held yet);
    a component in another status since a later date was valid before it.
    """
    result = []
    for category, since in zip(categories, sinces, strict=True):
        if (since or start) <= day:
            result.append(dict(category))
        elif category.get("status") != "valid":
            result.append({"code": category["code"], "status": "valid",
                           "since": start.isoformat()})
    return result


_INITIAL_DATES = tuple(name for name in _INITIAL_FIELDS if name in DATE_FIELDS)
_dates: dict[str, dt.date] = {}


def _iso_date(value: Any) -> dt.date | None:
    """`_parse_date`, remembering the ISO strings it parsed (registries repeat dates)."""
    if type(value) is not str:
        return _parse_date(value)
    parsed = _dates.get(value)
    if parsed is None:
        if len(_dates) >= 4096:
            _dates.clear()
        parsed = _dates[value] = dt.date.fromisoformat(value)
    return parsed


def creation_events(values: Mapping[str, Any], today: dt.date) -> list[EventSpec]:
    """Events describing a newly seen operator, oldest first.

    The first (`created`) event holds on the authorisation date; later dated facts in the
    record (a status since a later date, a component suspended since a later date) become
    their own events, so that history answers earlier dates correctly.
    """
    get = values.get
    began = _iso_date(get("authorised_on"))
    if began is None:
        began = _iso_date(get("valid_from"))
    start = today if began is None else min(began, today)  # `_start_date`
    status = get("status")
    status_effective = _iso_date(get("status_effective"))
    categories = list(get("categories") or [])
    sinces = [_iso_date(c.get("since")) for c in categories]
    later_dates = sorted(
        {d for d in [status_effective, *sinces] if d is not None and start < d <= today}
    )
    # the first event's values, built in their JSON form (what `to_event_values` gives)
    initial = {name: get(name) for name in _INITIAL_FIELDS}
    for name in _INITIAL_DATES:
        value = initial[name]
        if isinstance(value, dt.date):
            initial[name] = value.isoformat()
    late_status = status != "valid" and status_effective is not None and status_effective > start
    initial["status"] = "valid" if late_status else status
    effective = start if late_status else status_effective
    initial["status_effective"] = None if effective is None else effective.isoformat()
    initial["categories"] = _categories_since(categories, sinces, start, start)
    initial["listed"] = True
    events = [EventSpec("created", start, initial)]
    if not later_dates:
        return events
    previous_categories = initial["categories"]
    for day in later_dates:
        cats = _categories_since(categories, sinces, day, start)
        if cats != previous_categories:
            events.append(EventSpec("categories_changed", day, {"categories": cats},
                                    {"categories": previous_categories}))
            previous_categories = cats
        if late_status and status_effective == day:
            events.append(EventSpec(
                "status_changed", day,
                to_event_values({"status": status, "status_effective": status_effective}),
                {"status": "valid"},
            ))
    return events


def update_events(current: Mapping[str, Any], values: Mapping[str, Any], today: dt.date
                  ) -> list[EventSpec]:
    """Events for the differences between the current state and a new record."""
    events: list[EventSpec] = []

    def changed(names: Sequence[str]) -> dict[str, Any]:
        return {n: values.get(n) for n in names if _json_value(n, values.get(n))
                != _json_value(n, current.get(n))}

    if current.get("listed") is False:
        events.append(EventSpec("restored", today, {"listed": True}, {"listed": False}))

    status_changes = changed(STATUS_FIELDS)
    if "status" in status_changes:
        effective = _parse_date(values.get("status_effective")) or today
        if values.get("status") == "annulled":
            effective = _start_date(current, today)
        effective = min(effective, today)
        events.append(EventSpec(
            "status_changed", effective,
            to_event_values({n: values.get(n) for n in STATUS_FIELDS}),
            to_event_values({n: current.get(n) for n in STATUS_FIELDS}),
        ))
    elif status_changes:  # the same status, a corrected effective date
        effective = min(_parse_date(values.get("status_effective")) or today, today)
        events.append(EventSpec("status_changed", effective, to_event_values(status_changes),
                                to_event_values({n: current.get(n) for n in status_changes})))

    if changed(CATEGORY_FIELDS):
        new = list(values.get("categories") or [])
        old = {c["code"]: c for c in current.get("categories") or []}
        dates = []
        for category in new:
            before = old.get(category["code"])
            if before == category:
                continue
            since = _parse_date(category.get("since"))
            before_since = _parse_date(before.get("since")) if before else None
            # A change cannot take effect before the state it replaces began; a source
            # that kept a stale `since` gets the date the hub saw the change.
            if since is None or (before_since is not None and since <= before_since):
                since = today
            dates.append(since)
        if len(new) < len(old):
            dates.append(today)
        effective = min(max(dates) if dates else today, today)
        events.append(EventSpec("categories_changed", effective, {"categories": new},
                                {"categories": current.get("categories")}))

    consent = changed(CONSENT_FIELDS)
    if consent:
        events.append(EventSpec("consent_changed", today, consent,
                                {n: current.get(n) for n in consent}))

    details = changed(DETAIL_FIELDS)
    if details:
        events.append(EventSpec("details_changed", today, to_event_values(details),
                                to_event_values({n: current.get(n) for n in details})))
    return events


def removal_event(today: dt.date) -> EventSpec:
    return EventSpec("removed", today, {"listed": False}, {"listed": True})
