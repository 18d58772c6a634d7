"""The one definition of when an arrangement is in force and a direction is active.

Every module that asks "does R recognise P's AEOs on day D (for flow F)?" calls this
module: the data-sharing policy, verify, the crosswalk, the company pages, the dashboard,
the command line and the reference loader. Nothing else compares activation dates or
reads an arrangement's status history.

The rules:

* An arrangement's status on a day is the last step of its status history whose
  effective date is on or before that day; before its first step it has none. Steps on
  the same day follow the lifecycle (signed, then in force, then suspended or
  terminated); a manual step (the command line's suspend, resume, terminate) comes after
  the reference data's steps of that day, in the order it was recorded.
* A direction is active on a day when its arrangement is in force that day and the day
  lies in the direction's activation window: the start date counts (inclusive), the end
  date does not (exclusive), and a direction without a start date is not active, since
  nothing is recognised or shared before a date is known.
* A direction covers a flow when the flow is among its flows; sharing (who may see an
  operator) does not depend on the flow, recognition does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Protocol

#: The statuses of an arrangement, in lifecycle order.
ARRANGEMENT_STATUSES = ("signed", "in_force", "suspended", "terminated")
_RANK = {status: rank for rank, status in enumerate(ARRANGEMENT_STATUSES)}

#: An arrangement's status history: (effective date, status), in effect order.
StatusHistory = tuple[tuple[dt.date, str], ...]

#: Why a direction is not active on a day (`activity`), or that it is.
ACTIVE = "active"
NOT_IN_FORCE = "not_in_force"
NO_START = "no_start"
NOT_STARTED = "not_started"
ENDED = "ended"


class StatusStep(Protocol):
    """One recorded step of an arrangement's status (`ArrangementStatusChange`)."""

    @property
    def status(self) -> str: ...
    @property
    def effective_date(self) -> dt.date: ...
    @property
    def origin(self) -> str: ...
    @property
    def id(self) -> int | None: ...


class HasStatuses(Protocol):
    """Anything carrying an ordered status history (an arrangement, a direction's rule)."""

    @property
    def statuses(self) -> StatusHistory: ...


class DirectionDates(Protocol):
    """A direction's activation window."""

    @property
    def active_from(self) -> dt.date | None: ...
    @property
    def active_until(self) -> dt.date | None: ...


def order_steps(steps: Iterable[StatusStep]) -> StatusHistory:
    """The history of recorded steps, in effect order (see the module's rules)."""
    ordered = sorted(steps, key=lambda s: (
        s.effective_date, s.origin == "manual",
        0 if s.origin == "manual" else _RANK.get(s.status, 0), s.id or 0))
    return tuple((s.effective_date, s.status) for s in ordered)


def order_dated(steps: Iterable[tuple[dt.date, str]]) -> StatusHistory:
    """A history of reference steps (no manual ones), in effect order."""
    ordered = sorted(enumerate(steps), key=lambda p: (p[1][0], _RANK.get(p[1][1], 0), p[0]))
    return tuple(step for _, step in ordered)


def status_on(statuses: StatusHistory, day: dt.date) -> str | None:
    """The status on `day` (None before the first step)."""
    status = None
    for effective, value in statuses:
        if effective > day:
            break
        status = value
    return status


def arrangement_status_on(arrangement: HasStatuses, day: dt.date) -> str | None:
    """An arrangement's status on `day` (None before its first recorded status)."""
    return status_on(arrangement.statuses, day)


def in_window(direction: DirectionDates, day: dt.date) -> bool:
    """Whether `day` lies in the direction's activation window (start inclusive, end
    exclusive, no start: never)."""
    return activity_of_dates(direction, day) == ACTIVE


def activity_of_dates(direction: DirectionDates, day: dt.date) -> str:
    """ACTIVE, NO_START, NOT_STARTED or ENDED: the window's part of `activity`."""
    if direction.active_from is None:
        return NO_START
    if day < direction.active_from:
        return NOT_STARTED
    if direction.active_until is not None and day >= direction.active_until:
        return ENDED
    return ACTIVE


def activity(direction: DirectionDates, arrangement: HasStatuses, day: dt.date
             ) -> tuple[str, ...]:
    """Every reason the direction is not active on `day` (empty: it is active).

    NOT_IN_FORCE when the arrangement is not in force, and one of NO_START, NOT_STARTED,
    ENDED when the day is outside the activation window.
    """
    out: list[str] = []
    if arrangement_status_on(arrangement, day) != "in_force":
        out.append(NOT_IN_FORCE)
    window = activity_of_dates(direction, day)
    if window != ACTIVE:
        out.append(window)
    return tuple(out)


def direction_active(direction: DirectionDates, arrangement: HasStatuses, day: dt.date
                     ) -> bool:
    """Whether the direction grants recognition (and sharing) on `day`."""
    return not activity(direction, arrangement, day)


def covers_flow(flows: Sequence[str], flow: str) -> bool:
    """Whether a direction with `flows` grants benefits on `flow`."""
    return flow in flows

