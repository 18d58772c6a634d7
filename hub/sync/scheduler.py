"""The scheduler process: APScheduler 3 runs each connection on its schedule.

Runs in `aeohub scheduler`, never inside web workers (APScheduler's job stores cannot be
shared between processes). Jobs are built from the connections table and rebuilt when it
changes. Exactly once: every fire computes its schedule slot (the latest fire time of the
connection's trigger, anchored so that every scheduler computes the same slots) and claims
(connection, slot) with a unique row before running, on top of the per-connection lease;
two schedulers on one database therefore run each due sync once, even when one finishes
before the other fires. A run that failed, or whose process died (it is then abandoned),
gives its slot up: a scheduler runs once, at once, each connection's latest slot that
passed while no scheduler ran, or whose run died (it resumes that run when the feed is the
same) or failed. Failing connections back off exponentially: a slot that failed, or whose
fire the backoff skipped, is run when the backoff has passed. Node notifications
(`Connection.notify_requested_at`) start an immediate run; notifications that arrive
during a run coalesce into one follow-up run, and a notified run that died gives its
notification back, so that a follow-up run serves it.

A connection with a `snapshot_schedule` is read whole, as a snapshot, at the first
scheduled sync at or after each slot of that schedule (unless a snapshot run already
started since the slot): an incremental source learns of removed rows only from a whole
read, and the snapshot's switch applies the removals with its usual guards. A failed or
abandoned snapshot is tried again at the next scheduled sync, as is one whose process
died; a held one waits for confirmation like any held run.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.utils import import_string

from hub import clock, versions
from hub.db import Database, get_db
from hub.errors import InvalidInput
from hub.sync import lease
from hub.sync.connections import CONNECTIONS, SyncSettings, backoff_until, parse_schedule
from hub.sync.engine import LeaseBusy, abandon_dead_runs, run_sync
from hub.sync.models import KEEPS_SLOT, Connection, SyncRun

log = logging.getLogger(__name__)
ANCHOR = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
#: How far back a cron schedule's latest fire is looked for, nearest first: the search
#: walks every fire time from there to now, so a schedule of minutes is found within the
#: hour rather than by walking two days of it (every tick asks, `unserved_slots`).
LOOKBACKS = (dt.timedelta(hours=1), dt.timedelta(days=2), dt.timedelta(days=32),
             dt.timedelta(days=367))
#: Snapshot runs that stand for their slot: applied, held, or ended by a decision on the
#: held run. A failed or abandoned one is read again at the next scheduled sync, and so
#: is one still `running` then (its process died; a live one holds the lease: busy).
STANDING = ("succeeded", "needs_confirmation", "discarded", "superseded")


def trigger_for(schedule: str) -> BaseTrigger:
    kind, value = parse_schedule(schedule)
    if kind == "interval":
        return IntervalTrigger(seconds=value, start_date=ANCHOR, timezone=dt.UTC)
    trigger: BaseTrigger = value
    return trigger


def latest_fire(trigger: BaseTrigger, now: dt.datetime) -> dt.datetime | None:
    """The latest fire time of `trigger` at or before `now` (None: none in a year)."""
    if isinstance(trigger, IntervalTrigger):
        interval: dt.timedelta = trigger.interval
        steps = (now - ANCHOR) // interval
        return ANCHOR + steps * interval
    for lookback in LOOKBACKS:
        current: dt.datetime | None = trigger.get_next_fire_time(None, now - lookback)
        if current is None or current > now:
            continue
        while True:
            following: dt.datetime | None = trigger.get_next_fire_time(
                current, current + dt.timedelta(seconds=1))
            if following is None or following > now:
                return current
            current = following
    return None


def slot_for(trigger: BaseTrigger, now: dt.datetime) -> dt.datetime:
    """The latest fire time of `trigger` at or before `now` (the slot a fire claims)."""
    return latest_fire(trigger, now) or now.replace(microsecond=0)


def snapshot_due(session: Session, connection: Connection, now: dt.datetime) -> bool:
    """Whether a scheduled sync of `connection` at `now` reads its source whole: its
    `snapshot_schedule` has a slot at or before `now` and no snapshot run that stands for
    it (`STANDING`) started since that slot."""
    if not connection.snapshot_schedule:
        return False
    try:
        slot = latest_fire(trigger_for(connection.snapshot_schedule), now)
    except InvalidInput:
        log.error("connection %s has an invalid snapshot schedule %r", connection.id,
                  connection.snapshot_schedule)
        return False
    if slot is None:
        return False
    since = session.scalar(select(SyncRun.id).where(
        SyncRun.connection_id == connection.id, SyncRun.snapshot.is_(True),
        SyncRun.dry_run.is_(False), SyncRun.started_at >= slot,
        SyncRun.status.in_(STANDING)).limit(1))
    return since is None


class HubScheduler:
    def __init__(self, app: Flask, *, poll_seconds: float = 2.0) -> None:
        self.app = app
        self.database: Database = get_db(app)
        self.settings = SyncSettings.from_config(app.config)
        self.poll_seconds = poll_seconds
        self.holder = lease.holder_id()
        self.scheduler = BackgroundScheduler(
            timezone=dt.UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        )
        self.triggers: dict[int, BaseTrigger] = {}
        self.schedules: dict[int, str] = {}
        self.version = -1
        self.stopping = threading.Event()
        # Runs started outside the schedule's own jobs: notified runs and catch-ups. A
        # pool rather than APScheduler date jobs, whose removal after running races with
        # the scheduler's shutdown (JobLookupError).
        self.pool = ThreadPoolExecutor(max_workers=int(app.config["SCHEDULER_WORKERS"]),
                                       thread_name_prefix="sync")
        self.notify_running: set[int] = set()
        # connections with a catch-up queued or running (`catch_up`)
        self.catching_up: set[int] = set()
        self.lock = threading.Lock()

    # -- jobs -----------------------------------------------------------------------------

    def reload(self) -> None:
        with self.database.session_scope() as session:
            self.version = versions.version(session, CONNECTIONS)
            rows = session.execute(
                select(Connection.id, Connection.schedule)
                .where(Connection.enabled.is_(True))).all()
        wanted: dict[int, str] = {row[0]: row[1] for row in rows}
        for conn_id in list(self.schedules):
            if conn_id not in wanted:
                self.scheduler.remove_job(f"connection-{conn_id}")
                del self.schedules[conn_id]
                self.triggers.pop(conn_id, None)
        for conn_id, schedule in wanted.items():
            if self.schedules.get(conn_id) == schedule:
                continue
            try:
                trigger = trigger_for(schedule)
            except Exception:
                log.exception("connection %s has an invalid schedule %r", conn_id, schedule)
                continue
            self.triggers[conn_id] = trigger
            self.schedules[conn_id] = schedule
            self.scheduler.add_job(self.fire, trigger, id=f"connection-{conn_id}",
                                   kwargs={"connection_id": conn_id}, replace_existing=True)
        log.info("scheduler has %d connection job(s)", len(self.schedules))

    def fire(self, connection_id: int) -> SyncRun | None:
        """Run the connection's current slot; the run (None when none started: the slot
        is served already, the connection backs off from failures, or it is busy)."""
        trigger = self.triggers.get(connection_id)
        if trigger is None:
            return None
        now = clock.now()
        slot = slot_for(trigger, now)
        with self.database.session_scope() as session:
            connection = session.get(Connection, connection_id)
            if connection is None or not connection.enabled:
                return None
            snapshot = snapshot_due(session, connection, now)
        if snapshot:
            log.info("connection %s: slot %s reads the source whole (snapshot schedule)",
                     connection_id, slot)
        return self._run(connection_id, "schedule", slot, snapshot=snapshot)

    def _run(self, connection_id: int, trigger: str, slot: dt.datetime | None, *,
             snapshot: bool = False) -> SyncRun | None:
        try:
            run = run_sync(self.database, self.settings, connection_id, trigger=trigger,
                           scheduled_for=slot, snapshot=snapshot)
        except LeaseBusy:
            # a slot that found its connection busy is unserved once the lease is free,
            # and the next tick catches it up (`catch_up`)
            log.info("connection %s is busy elsewhere; %s when it is free", connection_id,
                     f"slot {slot.isoformat()} runs" if slot else "its notification waits")
            return None
        if run is None:
            log.info("slot %s of connection %s: nothing to run (served already, or the "
                     "connection backs off)", slot, connection_id)
        return run

    # -- notifications --------------------------------------------------------------------

    def poll_notifications(self) -> None:
        """Start a run for each notified connection. A connection that a run holds waits
        for it to end: its notification is taken only by a run that starts
        (`SyncJob._take_notification`), so it is never dropped."""
        with self.database.session_scope() as session:
            due = session.scalars(select(Connection.id).where(
                Connection.notify_requested_at.is_not(None),
                Connection.enabled.is_(True),
                Connection.id.not_in(lease.live_connections(clock.now())))).all()
        for connection_id in due:
            with self.lock:
                if connection_id in self.notify_running:
                    continue  # coalesced: the follow-up starts when this run ends
                self.notify_running.add(connection_id)
            self.pool.submit(self._notified_run, connection_id)

    def _notified_run(self, connection_id: int) -> None:
        try:
            self._run(connection_id, "notify", None)
        except Exception:
            log.exception("notified sync of connection %s failed", connection_id)
        finally:
            with self.lock:
                self.notify_running.discard(connection_id)

    # -- loop -----------------------------------------------------------------------------

    def unserved_slots(self) -> dict[int, tuple[dt.datetime, str | None]]:
        """Each enabled connection's latest slot that no run stands for, with what became
        of the run that claimed it: `died` (abandoned, or still `running` with no live
        lease), `failed`, or None (no run claimed it: it passed while no scheduler ran, or
        its fire was skipped while the connection backed off; it counts only when it came
        after the connection was added). A connection backing off from failures has none
        until its backoff has passed, nor has one that a live lease holds (a run is going:
        its slot is asked again when it ends). Only the latest slot counts, however many
        were missed."""
        now = clock.now()
        slots = {connection_id: slot for connection_id, trigger in self.triggers.items()
                 if (slot := latest_fire(trigger, now)) is not None}
        with self.database.session_scope() as session:
            added = {connection.id: connection.created_at for connection in session.scalars(
                select(Connection).where(Connection.id.in_(slots),
                                         Connection.enabled.is_(True)))
                     if backoff_until(connection, now) is None}
            live = set(session.scalars(lease.live_connections(now)))
            claims = session.execute(
                select(SyncRun.connection_id, SyncRun.scheduled_for, SyncRun.status,
                       KEEPS_SLOT).where(
                    SyncRun.connection_id.in_(slots),
                    SyncRun.scheduled_for.in_(set(slots.values())))).all()
        standing: set[int] = set()
        ended: dict[int, str] = {}
        for connection_id, slot, status, keeps in claims:
            if slots[connection_id] != slot:
                continue
            if status in ("abandoned", "running"):  # (a live lease's are left out)
                ended[connection_id] = "died"
            elif not keeps:
                ended[connection_id] = "failed"
            else:
                standing.add(connection_id)
        return {connection_id: (slot, ended.get(connection_id))
                for connection_id, slot in slots.items()
                if connection_id in added and connection_id not in standing | live
                and (connection_id in ended or slot >= added[connection_id])}

    def catch_up(self) -> None:
        """Queue one scheduled run, at once, for each latest slot that no run stands for
        (`unserved_slots`): a daily sync missed at 02:00 (no scheduler ran, the
        connection was busy elsewhere or backing off), or whose run was killed or failed,
        runs now rather than a day late. A scheduler does this when it starts and on every
        tick. The run claims the slot as any fire does (a run it resumes takes the slot),
        and a run whose slot another run already serves stops before doing anything, so
        schedulers catching up together run it once."""
        for connection_id, (slot, ended) in self.unserved_slots().items():
            with self.lock:
                if connection_id in self.catching_up:
                    continue
                self.catching_up.add(connection_id)
            log.info("connection %s: %s; running it now", connection_id,
                     f"the run of slot {slot.isoformat()} {ended}" if ended else
                     f"no run served its latest slot, {slot.isoformat()}")
            self.pool.submit(self._catch_up_run, connection_id)

    def _catch_up_run(self, connection_id: int) -> None:
        try:
            self.fire(connection_id)
        except Exception:
            log.exception("catch-up sync of connection %s failed", connection_id)
        finally:
            with self.lock:
                self.catching_up.discard(connection_id)

    def tick(self) -> None:
        with self.database.session_scope() as session:
            current = versions.version(session, CONNECTIONS)
        if current != self.version:
            self.reload()
        abandon_dead_runs(self.database)
        self.catch_up()
        self.poll_notifications()

    def run_once(self) -> list[SyncRun]:
        """Run every enabled connection's current slot now (`aeohub scheduler --once`);
        the runs that started (a slot already served, a busy connection or one backing off
        from failures has none)."""
        self.reload()
        runs = [self.fire(connection_id) for connection_id in self.triggers]
        return [run for run in runs if run is not None]

    def run_forever(self) -> None:
        self.reload()
        self.catch_up()
        # Jobs of other packages (SCHEDULER_JOBS: the notify package's view changes).
        for name in self.app.config.get("SCHEDULER_JOBS", ()):
            import_string(name)(self.scheduler, self.database)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        self.scheduler.start()
        try:
            while not self.stopping.wait(self.poll_seconds):
                try:
                    self.tick()
                except Exception:
                    log.exception("scheduler tick failed")
        except KeyboardInterrupt:
            pass
        finally:
            self.scheduler.shutdown(wait=True)
            self.pool.shutdown(wait=True)
