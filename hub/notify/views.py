"""Changes of view as events: operators entering or leaving a client's view on a day.

A client's view changes without any write to the registry when a direction starts, is
suspended or ends (the rulebook, `hub.arrangements.rulebook`, judges it by the date). The
hub therefore keeps, per (recognising, recognised) programme pair, the grant it last
announced (`ViewGrant`), and `record_view_changes(session, day)` compares them with the
grants the policy gives on `day`: every operator visible under one and not under the
other gets a `ViewChange` (`tombstone` when it left the view, `shared` when it entered),
which the change feed serves to the recognising programme's clients and the dispatcher
turns into webhooks. The new grants are then stored, so each change is announced once;
running it again the same day writes nothing.

It runs in the scheduler process (`add_jobs`): every day shortly after midnight UTC, once
at start-up (so that a scheduler that was down catches up), and within seconds of a change
to the reference data (a load, or an arrangement suspended, resumed or terminated: the
job watches the reference version that those changes bump). Reads never wait for it: the
policy judges every request on its own day; these records only feed the change feed's
and webhooks' announcements. A database
upgraded from a release that shared by an older rule starts from the grants that rule
gave (the migration that created these tables stores them), so the first run tombstones
the operators that rule shared wrongly.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub import clock, versions
from hub.arrangements.models import ArrangementDirection
from hub.auth import policy
from hub.auth.policy import Grant, View
from hub.db import Database
from hub.notify.models import ViewChange, ViewGrant
from hub.registry.models import Operator, Programme

log = logging.getLogger(__name__)
#: Operators judged per query when a grant changed.
BATCH = 2000
#: The daily job's id in the scheduler, and when it runs (UTC).
JOB_ID = "view-changes"
DAILY_AT = {"hour": 0, "minute": 0, "second": 30}
#: The job that watches the reference version, and how often it looks.
WATCH_JOB_ID = "view-changes-on-reference"
WATCH_SECONDS = 5


@dataclass
class ViewChanges:
    """What one run wrote: operators that left (`tombstones`) and entered (`shared`)."""

    tombstones: int = 0
    shared: int = 0
    pairs: int = 0


def _stored(row: ViewGrant, code: str) -> Grant:
    return Grant(row.recognised_id, code, tuple(row.arrangements or ()),
                 frozenset(str(c) for c in row.categories or ()), bool(row.consent_required),
                 frozenset())


def _same(old: Grant | None, new: Grant | None) -> bool:
    if old is None or new is None:
        return old is new
    return (old.categories, old.consent_required) == (new.categories, new.consent_required)


def _recognising_ids(session: Session) -> list[int]:
    ids = set(session.scalars(select(ArrangementDirection.recognising_id).distinct()))
    ids |= set(session.scalars(select(ViewGrant.recognising_id).distinct()))
    return sorted(ids)


def record_view_changes(session: Session, day: dt.date | None = None) -> ViewChanges:
    """Write the view changes of `day` (default: today, UTC) in `session`'s transaction."""
    day = day or clock.now().date()
    result = ViewChanges()
    codes = {int(pid): str(code)
             for pid, code in session.execute(select(Programme.id, Programme.code))}
    recorded_at = clock.now()
    for recognising in _recognising_ids(session):
        now = policy.view_for(session, recognising, day=day)
        stored = {row.recognised_id: row for row in session.scalars(
            select(ViewGrant).where(ViewGrant.recognising_id == recognising))}
        for recognised in sorted(set(stored) | set(now.grants)):
            before = (_stored(stored[recognised], codes.get(recognised, "?"))
                      if recognised in stored else None)
            after = now.grants.get(recognised)
            if _same(before, after):
                continue
            result.pairs += 1
            _judge(session, recognising, recognised, before, after, day, recorded_at, result)
            if after is None:
                session.execute(delete(ViewGrant).where(
                    ViewGrant.recognising_id == recognising,
                    ViewGrant.recognised_id == recognised))
                continue
            row = stored.get(recognised) or ViewGrant(recognising_id=recognising,
                                                      recognised_id=recognised)
            row.categories = sorted(after.categories)
            row.consent_required = after.consent_required
            row.arrangements = sorted(after.arrangements)
            row.since = day
            session.add(row)
    session.flush()
    return result


def _judge(session: Session, recognising: int, recognised: int, before: Grant | None,
           after: Grant | None, day: dt.date, recorded_at: dt.datetime,
           result: ViewChanges) -> None:
    """Write a change for every operator of `recognised` seen under one grant only."""
    old = View(recognising, False, day, {recognised: before} if before else {})
    new = View(recognising, False, day, {recognised: after} if after else {})
    left = ",".join(before.arrangements) if before else ""
    entered = ",".join(after.arrangements) if after else ""
    last = 0
    while True:
        rows = list(session.execute(
            select(Operator.id, Operator.programme_id, Operator.consent_share,
                   Operator.categories)
            .where(Operator.programme_id == recognised, Operator.id > last)
            .order_by(Operator.id).limit(BATCH)))
        if not rows:
            return
        last = rows[-1].id
        was = policy.grants_of_rows(session, old, rows)
        now = policy.grants_of_rows(session, new, rows)
        for row in rows:
            if row.id in was and row.id not in now:
                session.add(ViewChange(recognising_id=recognising, operator_id=row.id,
                                       kind="tombstone", arrangement=left[:200],
                                       effective_date=day, recorded_at=recorded_at))
                result.tombstones += 1
            elif row.id in now and row.id not in was:
                session.add(ViewChange(recognising_id=recognising, operator_id=row.id,
                                       kind="shared", arrangement=entered[:200],
                                       effective_date=day, recorded_at=recorded_at))
                result.shared += 1
        session.flush()


def run_daily(database: Database, day: dt.date | None = None) -> ViewChanges | None:
    """The daily job: record the day's view changes in their own transaction. Two
    schedulers doing it at once write them once (the second one's rows collide with the
    first's and it gives up)."""
    try:
        with database.session_scope(write=True) as session:
            result = record_view_changes(session, day)
    except IntegrityError:
        log.info("view changes of %s were recorded by another scheduler", day or "today")
        return None
    if result.pairs:
        log.info("view changes: %d programme pairs changed, %d operators left views, "
                 "%d entered", result.pairs, result.tombstones, result.shared)
    return result


def add_jobs(scheduler: Any, database: Database) -> None:
    """Register the view-change jobs with an APScheduler 3 scheduler: the daily run (and
    a first run now), and the watch on the reference data."""
    scheduler.add_job(run_daily, "cron", id=JOB_ID, replace_existing=True,
                      kwargs={"database": database}, next_run_time=clock.now(), **DAILY_AT)
    scheduler.add_job(ReferenceWatch(database), "interval", id=WATCH_JOB_ID,
                      replace_existing=True, seconds=WATCH_SECONDS)


class ReferenceWatch:
    """Records the day's view changes when the reference data changed since it last
    looked (the version is the one `hub.arrangements.service` bumps)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.seen = self.version()

    def version(self) -> int:
        with self.database.session_scope() as session:
            return versions.version(session, versions.REFERENCE)

    def __call__(self) -> ViewChanges | None:
        current = self.version()
        if current == self.seen:
            return None
        self.seen = current
        return run_daily(self.database)


def feed_items(session: Session, view: View, after: int, room: int) -> list[dict[str, Any]]:
    """The view changes of the viewer's programme after id `after`, as change-feed items
    (at most `room`)."""
    if view.is_admin or view.programme_id is None or room <= 0:
        return []
    rows = session.execute(
        select(ViewChange, Programme.code)
        .join(Operator, Operator.id == ViewChange.operator_id)
        .join(Programme, Programme.id == Operator.programme_id)
        .where(ViewChange.recognising_id == view.programme_id, ViewChange.id > after)
        .order_by(ViewChange.id).limit(room)).all()
    out: list[dict[str, Any]] = []
    for change, programme in rows:
        item: dict[str, Any] = {
            "event_id": None, "view_change_id": change.id, "kind": change.kind,
            "reason": "no_longer_shared" if change.kind == "tombstone" else "now_shared",
            "operator_id": change.operator_id, "programme": programme,
            "arrangement": change.arrangement,
            "effective_date": change.effective_date.isoformat(),
            "recorded_at": change.recorded_at.isoformat()}
        if change.kind == "shared":
            item.update(changes={}, previous={})
        out.append(item)
    return out
