"""Run a sync: classify every record, stage it, then merge by set-based SQL.

Each connector batch is classified in this process: a record whose fingerprint is that
of a listed operator is unchanged; the others are validated (`hub.sync.validate`) and
become creations or updates with their history events (`hub.registry.history`), or are
rejected. Every record key met is staged (`hub.sync.merge`) with the batch's connector
state, the run's counts and the lease fence in one transaction, so a killed run resumes
after its last staged batch and counts nothing twice.

- A **snapshot** is switched in one transaction once it is complete: creations,
  updates, events, identifiers, and the removal of the operators of the connection's
  scope it did not meet. Readers see the old registry or the new one, never a mix.
- An **incremental** page is staged and merged in one transaction with its checkpoint.
- A rejected record never changes or removes its operator: it is tied to one by stable
  key, authorisation number or another identifier, and staged as a keep marker.
- Guards hold a snapshot (`needs_confirmation`) that would remove or change too large a
  share of a programme, that read nothing, whose quarantined records pass the
  connection's thresholds, or that would remove operators while rejected records could
  not be tied to any; a held run shows its difference (`hub.sync.admin.difference`) and
  is confirmed, discarded, or superseded by the next run. An incremental run past the
  quarantine thresholds fails, keeping the pages it committed.
- Every run ends in a terminal status; a run that died is resumed by the next run of its
  connection when the feed is the same one, and abandoned otherwise.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connectors.base import Batch, CanonicalRecord, Connector, ConnectorError, DeferredRecords
from hub import clock, gcpause
from hub.db import Database, ListQuery
from hub.errors import Conflict, InvalidInput, NotFound
from hub.logs import redact_text
from hub.registry import history
from hub.registry.models import Operator, OperatorIdentifier, Programme
from hub.registry.service import RECORD_COLUMNS, OperatorData
from hub.sync import audit as audit_hooks
from hub.sync import lease, merge
from hub.sync.connections import SyncSettings, backoff_until, build
from hub.sync.models import (
    KEEPS_SLOT,
    PROGRAMME_CODE,
    Connection,
    QuarantinedRecord,
    StagedRecord,
    SyncRun,
)
from hub.sync.validate import (
    ProgrammeRules,
    Rejection,
    record_digest,
    record_to_dict,
    safe_text,
    stable_key_of,
    unknown_programme,
    validate,
)

log = logging.getLogger(__name__)
COUNT_NAMES = ("read", "created", "updated", "unchanged", "removed", "quarantined")
Progress = Callable[[dict[str, int]], None]
#: Marks, in a run's saved connector state, that the snapshot's last batch is staged.
_COMPLETE = "_complete"


class LeaseBusy(Conflict):
    title = "Sync already running"


class LeaseLost(Conflict):
    title = "Sync lease lost"


class GuardStopped(ConnectorError):
    """An incremental run past its quarantine limits: it fails, and keeps its slot."""


def kill_point(name: str) -> None:
    """Where a test asked to stop this process (`AEOHUB_SYNC_TEST_HOOK=name`): a kill -9
    of itself, as an operator's `kill -9` or a power cut would. The points: after batch
    N is staged (`batch-N`), after the last one (`staged`), and in the switch's
    transaction before and after its statements (`before-switch`, `in-switch`)."""
    if os.environ.get("AEOHUB_SYNC_TEST_HOOK") == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class _Limits:
    """A connection's guard thresholds."""

    removal_share: float = 0.10
    change_share: float = 0.10
    quarantine_share: float = 0.10
    quarantined: int = 20


@dataclass
class _Programme:
    programme: Programme
    rules: ProgrammeRules


@dataclass
class _Item:
    """One record of a batch once classified."""

    key: str
    action: str  # create | update | same | keep
    position: str | None
    data: OperatorData | None = None
    fingerprint: str | None = None
    raw: dict[str, Any] | None = None  # the record, when it is quarantined
    specs: list[history.EventSpec] = field(default_factory=list)  # an update's events
    last_effective: dt.date | None = None
    identifiers_changed: bool = False
    clears_values: bool = False  # an update that empties a value the operator holds


@dataclass
class _Quarantine:
    programme: str | None
    stable_key: str | None
    operator_id: int | None
    raw: dict[str, Any]
    reasons: list[dict[str, str]]


@dataclass
class _Batch:
    """A batch classified: per programme id, its items by key; what to quarantine; the
    day its events are dated from."""

    today: dt.date
    items: dict[int, dict[str, _Item]] = field(default_factory=dict)
    quarantine: list[_Quarantine] = field(default_factory=list)
    removals: dict[int, set[str]] = field(default_factory=dict)


def _repeat_reason(key: str, scheme: str) -> dict[str, str]:
    return {"code": "duplicate_key", "field": scheme,
            "reason": f"stable key {key} appears more than once in this feed; the operator "
                      "keeps its last good state"}


#: The listed operators of a programme with one of a list of fingerprints.
_KNOWN = ListQuery(select(Operator.fingerprint, Operator.stable_key, Operator.country).where(
    Operator.programme_id == bindparam("programme"), Operator.removed_at.is_(None)),
    Operator.fingerprint, "fingerprints")


def current_rows(session: Session, programme_id: int, keys: list[str]
             ) -> dict[str, tuple[dict[str, Any], set[tuple[str, str, str, bool]]]]:
    """The stored values and identifiers of the operators with these keys."""
    columns = [getattr(Operator, name) for name in RECORD_COLUMNS]
    out: dict[str, tuple[dict[str, Any], set[tuple[str, str, str, bool]]]] = {}
    ids: dict[int, str] = {}
    for start in range(0, len(keys), 500):
        rows = session.connection().execute(
            select(Operator.id, Operator.stable_key, Operator.removed_at,
                   Operator.last_effective, *columns)
            .where(Operator.programme_id == programme_id,
                   Operator.stable_key.in_(keys[start:start + 500])))
        for row in rows:
            values = dict(zip(RECORD_COLUMNS, row[4:], strict=True))
            values["listed"] = row[2] is None
            values["_last_effective"] = row[3]
            out[row[1]] = (values, set())
            ids[row[0]] = row[1]
    id_list = list(ids)
    for start in range(0, len(id_list), 500):
        for op_id, scheme, value, origin, linked in session.connection().execute(
                select(OperatorIdentifier.operator_id, OperatorIdentifier.scheme,
                       OperatorIdentifier.value, OperatorIdentifier.origin,
                       OperatorIdentifier.linked)
                .where(OperatorIdentifier.operator_id.in_(id_list[start:start + 500]))):
            out[ids[op_id]][1].add((scheme, value, origin, bool(linked)))
    return out


#: The record values whose loss the change guard counts: what a feed that lost a column
#: (or mapped it to nothing) would empty for every operator. Not the bookkeeping
#: (fingerprint, warnings, the source's change time) nor the consent flags (a change of
#: consent is counted as such).
_HELD_VALUES = tuple(name for name in RECORD_COLUMNS if name not in (
    "fingerprint", "warnings", "source_changed_at", "consent_share", "consent_publish"))
_EMPTY: tuple[Any, ...] = (None, "", [])


def in_scope(result: OperatorData | Rejection, scope: merge.Scope) -> OperatorData | Rejection:
    """A valid record of a country outside a connection's scope is refused: another
    connection answers for it."""
    if isinstance(result, Rejection) or scope.covers(result.values["country"]):
        return result
    return Rejection([{"code": "out_of_scope", "field": "country",
                       "reason": f"{result.values['country']} is outside this connection's "
                                 f"scope ({', '.join(scope.countries)})"}],
                     stable_key=result.stable_key)


def latest_versions(entries: list[tuple[OperatorData, str | None]]
                    ) -> tuple[list[tuple[OperatorData, str | None]], int]:
    """An incremental page's valid records with only the latest version of each operator,
    and how many earlier versions were left out. A change log may list one operator more
    than once, and the latest `changed_at` wins (docs/node-protocol.md), as it does across
    pages. Versions that cannot be ordered (one without a change time, or different ones
    with the same time) are all kept: the batch quarantines them as `duplicate_key`, and
    the operator keeps its state. Identical repeats count once."""
    by_key: dict[str, list[tuple[OperatorData, str | None]]] = {}
    for entry in entries:
        by_key.setdefault(entry[0].stable_key, []).append(entry)
    kept: list[tuple[OperatorData, str | None]] = []
    for versions in by_key.values():
        times: list[dt.datetime | None] = [data.values.get("source_changed_at")
                                            for data, _ in versions]
        ordered = [time for time in times if time is not None]
        if len(versions) == 1 or len(ordered) < len(times):
            kept.extend(versions)
            continue
        latest = max(ordered)
        newest = [entry for entry, time in zip(versions, times, strict=True) if time == latest]
        identical = all(_content(data) == _content(newest[0][0]) for data, _ in newest)
        kept.extend(newest[-1:] if identical else newest)
    return kept, len(entries) - len(kept)


def _content(data: OperatorData) -> tuple[dict[str, Any], list[tuple[str, str, str, bool]]]:
    """What a version says, apart from the fingerprint of its source form."""
    return ({k: v for k, v in data.values.items() if k != "fingerprint"},
            sorted(data.identifiers))


def plan_item(data: OperatorData, position: str | None,
             current: dict[str, tuple[dict[str, Any], set[tuple[str, str, str, bool]]]],
             today: dt.date) -> _Item:
    """A valid record as a creation, an update (with its events) or unchanged."""
    fingerprint = data.values.get("fingerprint")
    if data.stable_key not in current:
        return _Item(data.stable_key, "create", position, data, fingerprint)
    values, identifiers = current[data.stable_key]
    held, given = values.get("source_changed_at"), data.values.get("source_changed_at")
    if held is not None and given is not None and given < held and values["listed"]:
        # an older version than the one held (a record sent again after a resume from an
        # older cursor): the latest change time wins (docs/node-protocol.md)
        return _Item(data.stable_key, "same", position, None, None)
    specs = history.update_events(values, data.values, today)
    other = any(history.to_event_values({n: data.values.get(n)})
                != history.to_event_values({n: values.get(n)})
                for n in ("trader_id", "warnings", "source_changed_at"))
    changed = set(data.identifiers) != identifiers
    if not (specs or other or changed):
        return _Item(data.stable_key, "same", position, None, fingerprint)
    last = values["_last_effective"]
    if specs:
        last = max([s.effective_date for s in specs] + ([last] if last else []))
    clears = any(values.get(name) not in _EMPTY and data.values.get(name) in _EMPTY
                 for name in _HELD_VALUES)
    return _Item(data.stable_key, "update", position, data, fingerprint, specs=specs,
                 last_effective=last, identifiers_changed=changed, clears_values=clears)


def staged_row(run_id: int, seq: int, programme_id: int, item: _Item, today: dt.date,
               events: list[dict[str, Any]], identifiers: list[dict[str, Any]]
                ) -> dict[str, Any]:
    row: dict[str, Any] = {"run_id": run_id, "programme_id": programme_id,
                           "stable_key": item.key, "action": item.action, "seq": seq,
                           "position": item.position, "fingerprint": item.fingerprint}
    if item.data is None:  # a key only: the merge reads nothing else of it
        return row
    values = item.data.values
    row.update(values)
    row.update(status_change=False, identifiers_changed=False, has_events=False,
               clears_values=False)
    if item.action == "create":
        specs = history.creation_events(values, today)
        row["last_effective"] = max(s.effective_date for s in specs)
        row["identifiers_changed"] = True
    else:
        specs = item.specs
        row["status_change"] = any(
            s.kind in ("status_changed", "consent_changed") for s in specs)
        row["has_events"] = bool(specs)
        row["clears_values"] = item.clears_values
        row["identifiers_changed"] = item.identifiers_changed
        row["last_effective"] = item.last_effective
    for spec in specs:
        events.append({"run_id": run_id, "programme_id": programme_id,
                       "stable_key": item.key, "kind": spec.kind,
                       "effective_date": spec.effective_date, "changes": spec.changes,
                       "previous": spec.previous})
    if row["identifiers_changed"]:
        identifiers.extend(
            {"run_id": run_id, "programme_id": programme_id, "stable_key": item.key,
             "scheme": scheme, "value": value, "origin": origin, "linked": linked}
            for scheme, value, origin, linked in item.data.identifiers)
    return row


class SyncJob:
    """One run of one connection. Use `run_sync` rather than this class directly."""

    def __init__(self, database: Database, settings: SyncSettings, connection_id: int, *,
                 trigger: str, dry_run: bool, scheduled_for: dt.datetime | None,
                 progress: Progress | None, snapshot: bool = False) -> None:
        self.database = database
        self.settings = settings
        self.connection_id = connection_id
        self.trigger = trigger
        self.dry_run = dry_run
        self.scheduled_for = scheduled_for
        self.progress = progress
        self.force_snapshot = snapshot
        self.holder = lease.holder_id()
        self.counts: dict[str, int] = dict.fromkeys((*COUNT_NAMES, "untied"), 0)
        self.run_id: int | None = None
        self.programmes: dict[str, _Programme] = {}
        self.scope = merge.Scope(())
        self.limits = _Limits()
        self.checkpoint: dict[str, Any] = {}  # where an incremental source goes on from
        # a snapshot run's keys staged so far, and those staged as keep markers, per
        # programme id (a key met again is a duplicate)
        self.met: dict[int, set[str]] = {}
        self.kept: dict[int, set[str]] = {}
        self.snapshot = False
        self.incremental_source = False
        self.seq = 0
        self.source = f"connection:{connection_id}"

    # -- the run ------------------------------------------------------------------------

    def run(self) -> SyncRun | None:
        ttl = dt.timedelta(seconds=self.settings.lease_seconds)
        if not lease.acquire(self.database, self.connection_id, self.holder, ttl):
            raise LeaseBusy(f"connection {self.connection_id} is being synced by another "
                            "process; try again when that run ends")
        try:
            with lease.Heartbeat(self.database, self.connection_id, self.holder, ttl):
                self._run()
        except Exception as exc:
            self._fail(exc)
        finally:
            lease.release(self.database, self.connection_id, self.holder)
        return self._result()

    def _run(self) -> None:
        if self._nothing_to_run():
            return
        try:
            connector = self._load()
            discovery = connector.discover()
        except Exception:
            if not self._claim(None):
                # The slot is still held by a dead run, which resumes once the source
                # answers (`_nothing_to_run` found no other run serving it): this failure is
                # a run of its own without the slot, so that the backoff applies.
                self.scheduled_for = None
                self._claim(None)
            raise
        self.incremental_source = discovery.incremental
        self.snapshot = self.force_snapshot or not discovery.incremental
        state = None if self.dry_run else self._settle(discovery.snapshot_id)
        if state is None:
            if not self._claim(discovery.snapshot_id):
                self.run_id = None
                return
            state = {} if self.snapshot else self.checkpoint
        if self.snapshot:
            self._read_snapshot(connector, state)
        else:
            self._read_incremental(connector, state)

    def _load(self) -> Connector:
        with self.database.session_scope() as session:
            connection = session.get(Connection, self.connection_id)
            if connection is None:
                raise NotFound(f"no connection {self.connection_id}")
            connector = build(connection, self.settings)
            codes = list(connection.programmes)
            countries = tuple(connection.scope_countries or ())
            self.checkpoint = dict(connection.state or {})
            self.limits = _Limits(connection.max_removal_share, connection.max_change_share,
                                  connection.max_quarantine_share, connection.max_quarantined)
            for programme in session.scalars(
                    select(Programme).where(Programme.code.in_(codes))):
                self.programmes[programme.code] = _Programme(
                    programme, ProgrammeRules.of(programme))
                session.expunge(programme)
        self.scope = merge.Scope(tuple(p.programme.id for p in self.programmes.values()),
                                 countries)
        return connector

    def _claim(self, feed_id: str | None) -> bool:
        """Create the run row; False when this schedule slot was already claimed."""
        try:
            with self.database.session_scope(write=True) as session:
                now = clock.now()
                run = SyncRun(connection_id=self.connection_id, trigger=self.trigger,
                              status="running", dry_run=self.dry_run,
                              scheduled_for=self.scheduled_for, started_at=now,
                              heartbeat_at=now, counts=dict(self.counts),
                              snapshot=self.snapshot, feed_id=feed_id)
                session.add(run)
                session.flush()
                self.run_id = run.id
                self._take_notification(session)
            return True
        except IntegrityError:
            return False

    def _nothing_to_run(self) -> bool:
        """Whether this scheduled job has nothing to do: the connection backs off from
        failures (a run may have failed this slot a moment ago, while this job waited for
        the lease), or another run already serves its slot (two fires of one slot, from
        two schedulers or a fire and a catch-up). Asked with the lease held, before
        `_settle`, so that a fire that will not claim its slot never supersedes a held run
        or resumes a dead one."""
        if self.scheduled_for is None:
            return False
        with self.database.session_scope() as session:
            connection = session.get(Connection, self.connection_id)
            retry_at = backoff_until(connection) if connection is not None else None
            if retry_at is not None:
                log.info("connection %s backs off until %s", self.connection_id,
                         retry_at.isoformat())
                return True
            return session.scalar(select(SyncRun.id).where(
                SyncRun.connection_id == self.connection_id,
                SyncRun.scheduled_for == self.scheduled_for,
                SyncRun.status != "running", KEEPS_SLOT).limit(1)) is not None

    def _take_notification(self, session: Session, resumed: str | None = None) -> None:
        """A notified run answers its connection's pending notification once it holds the
        lease and has its run row: a notification after this asks for a follow-up run,
        and one before it is never dropped by a run that could not start (another process
        held the connection). If this run dies, `abandon_dead_runs` gives it back; a run
        that resumes a dead notified run (`resumed`, its trigger) takes it too."""
        if "notify" in (self.trigger, resumed):
            session.execute(update(Connection).where(Connection.id == self.connection_id)
                            .values(notify_requested_at=None))

    def _settle(self, feed_id: str | None) -> dict[str, Any] | None:
        """End the connection's earlier unfinished runs before this one starts.

        A held run is superseded (a stale snapshot can never be confirmed). A run still
        `running` is dead (this process holds the lease): it is resumed, same run id, when
        it is a snapshot of the same feed (`Discovery.snapshot_id`); otherwise abandoned.
        Staged rows of finished runs are deleted. Returns the resumed run's connector
        state, or None when this run starts afresh.
        """
        resumed: dict[str, Any] | None = None
        with self.database.session_scope(write=True) as session:
            self._fence(session)
            earlier = session.scalars(select(SyncRun).where(
                SyncRun.connection_id == self.connection_id,
                SyncRun.status.in_(("running", "needs_confirmation")))
                .order_by(SyncRun.id.desc())).all()
            for run in earlier:
                if (resumed is None and run.status == "running" and self.snapshot
                        and run.snapshot and not run.dry_run and not self.dry_run
                        and feed_id is not None and run.feed_id == feed_id):
                    resumed = dict(run.staged_state or {})
                    self.run_id = run.id
                    self.counts.update({k: int(v) for k, v in (run.counts or {}).items()
                                        if k in self.counts})
                    self.seq = int(session.scalar(select(func.max(StagedRecord.seq)).where(
                        StagedRecord.run_id == run.id)) or 0)
                    for programme_id, key, action in session.execute(
                            select(StagedRecord.programme_id, StagedRecord.stable_key,
                                   StagedRecord.action).where(
                                StagedRecord.run_id == run.id)):
                        self.met.setdefault(programme_id, set()).add(key)
                        if action == "keep":
                            self.kept.setdefault(programme_id, set()).add(key)
                    run.heartbeat_at = clock.now()
                    if self.scheduled_for is not None:  # it serves this job's slot now
                        run.scheduled_for = self.scheduled_for
                    self._take_notification(session, run.trigger)
                    log.info("run %s of connection %s resumes after batch %s", run.id,
                             self.connection_id, self.seq)
                    continue
                status = "superseded" if run.status == "needs_confirmation" else "abandoned"
                run.status = status
                run.finished_at = clock.now()
                run.error = run.error or (
                    "superseded by a newer run" if status == "superseded" else
                    "the process running it stopped; it was not resumed (another feed, "
                    "or nothing to resume)")
                audit_hooks.sync_outcome(session, run.id, status, trigger=run.trigger)
            for run_id in session.scalars(select(StagedRecord.run_id).distinct().join(
                    SyncRun, SyncRun.id == StagedRecord.run_id).where(
                    SyncRun.connection_id == self.connection_id,
                    SyncRun.status != "running")):
                merge.drop_staged(session, run_id)
        return resumed

    # -- reading --------------------------------------------------------------------------

    def _read_snapshot(self, connector: Connector, state: dict[str, Any]) -> None:
        # a resumed run whose last batch was staged goes straight to its switch
        complete = bool(state.pop(_COMPLETE, False))
        final_state: dict[str, Any] = state
        batches = () if complete else connector.read(state or None)
        # A batch's records, their classification and staged rows are a few hundred
        # thousand short-lived objects that reference counting frees: the cyclic
        # collector, paused for each batch, would otherwise walk them and the whole heap
        # over and over (`hub.gcpause`).
        for batch in gcpause.each(batches):
            classified = self._classify(batch)
            with self.database.session_scope(write=True) as session:
                self._stage(session, classified, batch)
                self._save(session, {**batch.state, _COMPLETE: batch.complete})
            kill_point(f"batch-{self.seq}")
            complete, final_state = batch.complete, dict(batch.state)
            self._report_progress()
        if not complete:
            raise ConnectorError("the snapshot ended without its completeness mark; "
                                 "nothing was applied")
        kill_point("staged")
        self._switch(confirmed=False, final_state=final_state)

    def _read_incremental(self, connector: Connector, state: dict[str, Any]) -> None:
        for page in gcpause.each(connector.read(state or None)):  # as a snapshot's batches
            if self._apply_page(page):
                return  # held
            self._report_progress()
        with self.database.session_scope(write=True) as session:
            self._succeed(session)

    def _apply_page(self, batch: Batch) -> bool:
        """Stage and merge one page of an incremental feed with its checkpoint, in one
        transaction; True when a guard held it instead."""
        classified = self._classify(batch)
        with self.database.session_scope(write=True) as session:
            self._stage(session, classified, batch)
            if self._too_many_quarantined():
                session.rollback()
                raise GuardStopped(self._quarantine_message() + "; the pages before "
                                   "were applied, this one was not")
            diff = merge.difference(session, self._run_id, self.scope, snapshot=False)
            reason = self._guard(diff, snapshot=False)
            if reason and not self.dry_run:
                self._hold(session, reason, diff, staged_state=dict(batch.state))
                return True
            self._count(diff)
            if not self.dry_run:
                merge.merge(session, self._run_id, self.scope, diff, snapshot=False,
                            now=clock.now(), source=self.source)
                self._resolve_quarantine(session, snapshot=False)
                connection = session.get(Connection, self.connection_id)
                assert connection is not None
                connection.state = dict(batch.state)
            merge.drop_staged(session, self._run_id)
            self._save(session, batch.state)
        return False

    def _report_progress(self) -> None:
        if self.progress:
            self.progress(dict(self.counts))

    @property
    def _run_id(self) -> int:
        assert self.run_id is not None
        return self.run_id

    # -- classifying ----------------------------------------------------------------------

    def _programme_of(self, code: str | None) -> _Programme | None:
        if code is None and len(self.programmes) == 1:
            return next(iter(self.programmes.values()))
        return self.programmes.get(code or "")

    def _classify(self, batch: Batch) -> _Batch:
        """Sort a batch's records: unchanged by fingerprint, else validated."""
        records = batch.records
        deferred = records if isinstance(records, DeferredRecords) else None
        self.counts["read"] += len(records)
        out = _Batch(clock.now().date())
        with self.database.session_scope() as session:
            marks = self._marks(records, deferred)
            known = self._known_fingerprints(session, marks, self.scope)
            valid: dict[int, list[tuple[OperatorData, str | None]]] = {}
            rejected: list[tuple[_Programme, CanonicalRecord, Rejection]] = []
            for i, (marked, fingerprint) in enumerate(marks):
                # An incremental page may carry several versions of one operator: each is
                # validated, so that its change time can be compared (`latest_versions`).
                if marked is not None and fingerprint and self.snapshot:
                    key = known.get((marked.programme.id, fingerprint))
                    if key is not None:
                        self._add(out, marked, _Item(key, "same", None))
                        continue
                record = records[i]  # a deferred record is parsed here, and only here
                prog = self._programme_of(record.programme)
                if prog is None:
                    raw = record_to_dict(record)
                    # the entry's programme is a code (the record keeps what was read)
                    given = raw["programme"]
                    out.quarantine.append(_Quarantine(
                        given if isinstance(given, str) and len(given) <= PROGRAMME_CODE
                        else None,
                        None, None, raw, unknown_programme(record, self.programmes)))
                    self.counts["untied"] += 1
                    continue
                result = in_scope(validate(record, prog.rules), self.scope)
                if isinstance(result, Rejection):
                    rejected.append((prog, record, result))
                else:
                    valid.setdefault(prog.programme.id, []).append((result, record.position))
            for prog, record, rejection in rejected:
                operator = self._tie(session, prog, rejection)
                raw = record_to_dict(record)
                if operator is None:
                    self.counts["untied"] += 1
                    out.quarantine.append(_Quarantine(prog.rules.code, rejection.stable_key,
                                                      None, raw, rejection.reasons))
                    continue
                self._add(out, prog, _Item(operator[1], "keep", record.position, raw=raw),
                          reasons=rejection.reasons, operator_id=operator[0])
            for prog in self.programmes.values():
                entries = valid.get(prog.programme.id, [])
                if not self.snapshot:
                    entries, superseded = latest_versions(entries)
                    self.counts["unchanged"] += superseded
                current = current_rows(session, prog.programme.id,
                                        [data.stable_key for data, _ in entries])
                for data, position in entries:
                    self._add(out, prog, plan_item(data, position, current, out.today))
            for deletion in batch.deletions:
                prog = self._programme_of(deletion.programme)
                if prog is None:
                    continue
                key = stable_key_of(deletion.trader_id_scheme, deletion.trader_id,
                                    prog.rules)
                if key:
                    out.removals.setdefault(prog.programme.id, set()).add(key)
        return out

    def _marks(self, records: Sequence[CanonicalRecord], deferred: DeferredRecords | None
               ) -> list[tuple[_Programme | None, str]]:
        """Each record's programme and fingerprint ("" when it has none, or problems),
        read without parsing a deferred record."""
        if deferred is not None:  # (its lengths agree: `DeferredRecords` checks them)
            return [(self._programme_of(code), fingerprint) for code, fingerprint
                    in zip(deferred.programmes, deferred.fingerprints, strict=True)]
        return [(self._programme_of(r.programme), "" if r.problems else r.fingerprint)
                for r in records]

    @staticmethod
    def _known_fingerprints(session: Session, marks: list[tuple[_Programme | None, str]],
                            scope: merge.Scope) -> dict[tuple[int, str], str]:
        """(programme id, fingerprint) -> stable key of the listed operators of `scope`
        whose fingerprint a record of the batch carries (per programme, one query per
        2,000 records, the fingerprints bound as one list: `hub.db.ListQuery`). An
        operator outside the scope (another connection's) is not this run's to call
        unchanged: its record is validated, and refused as out of scope."""
        wanted: dict[int, list[str]] = {}
        for prog, fingerprint in marks:
            if fingerprint and prog is not None:
                wanted.setdefault(prog.programme.id, []).append(fingerprint)
        found: dict[tuple[int, str], str] = {}
        for programme_id, fingerprints in wanted.items():
            for start in range(0, len(fingerprints), 2000):
                for fingerprint, key, country in _KNOWN.rows(session, {
                        "programme": programme_id,
                        "fingerprints": fingerprints[start:start + 2000]}):
                    if scope.covers(country):
                        found[(programme_id, fingerprint)] = key
        return found

    def _tie(self, session: Session, prog: _Programme, rejection: Rejection
             ) -> tuple[int, str] | None:
        """(operator id, stable key) of the operator a rejected record speaks of: by its
        stable key, else its authorisation number, else another identifier."""
        base = select(Operator.id, Operator.stable_key).where(
            Operator.programme_id == prog.programme.id)
        tries = []
        if rejection.stable_key:
            tries.append(base.where(Operator.stable_key == rejection.stable_key))
        if rejection.authorisation_number:
            tries.append(base.where(
                Operator.authorisation_number == rejection.authorisation_number))
        for scheme, value in rejection.identifiers:
            tries.append(base.join(OperatorIdentifier).where(
                OperatorIdentifier.scheme == scheme, OperatorIdentifier.value == value))
        for query in tries:
            found = session.execute(query.limit(2)).all()
            if len(found) == 1:
                return found[0][0], found[0][1]
        return None

    def _add(self, out: _Batch, prog: _Programme, item: _Item, *,
             reasons: list[dict[str, str]] | None = None, operator_id: int | None = None
             ) -> None:
        """Add an item; a key met twice in the batch keeps its operator as it is."""
        items = out.items.setdefault(prog.programme.id, {})
        if item.action == "keep":
            assert item.raw is not None and reasons is not None
            out.quarantine.append(_Quarantine(prog.rules.code, item.key, operator_id,
                                              item.raw, reasons))
        earlier = items.get(item.key)
        if earlier is None:
            items[item.key] = item
            return
        reason = _repeat_reason(item.key, prog.rules.stable_key_scheme)
        for one in (earlier, item):
            if one.action != "keep":
                out.quarantine.append(_Quarantine(
                    prog.rules.code, item.key, None,
                    {"stable_key": item.key, "position": one.position}, [reason]))
        items[item.key] = _Item(item.key, "keep", item.position)

    # -- staging --------------------------------------------------------------------------

    def _stage(self, session: Session, classified: _Batch, batch: Batch) -> None:
        """Write a classified batch's staged rows and quarantine entries."""
        self._fence(session)
        self.seq += 1
        records: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        identifiers: list[dict[str, Any]] = []
        for prog in self.programmes.values():
            programme_id = prog.programme.id
            items = classified.items.get(programme_id, {})
            if self.snapshot and items:
                self._repeats_across_batches(session, prog, items, classified)
            for key in classified.removals.get(programme_id, ()):
                items.setdefault(key, _Item(key, "remove", None))
            for item in items.values():
                records.append(staged_row(self._run_id, self.seq, programme_id, item,
                                          classified.today, events, identifiers))
        self.counts["unchanged"] += sum(1 for items in classified.items.values()
                                        for i in items.values() if i.action == "same")
        merge.stage(session, records, events, identifiers)
        self._quarantine(session, classified.quarantine)

    def _repeats_across_batches(self, session: Session, prog: _Programme,
                                items: dict[str, _Item], classified: _Batch) -> None:
        """A snapshot lists each operator once: a key staged by an earlier batch of this
        run is met again. Both records are quarantined; the operator keeps its state."""
        met = self.met.setdefault(prog.programme.id, set())
        kept = self.kept.setdefault(prog.programme.id, set())
        earlier = [key for key in items if key in met]
        for key in earlier:
            item = items.pop(key)
            text = _repeat_reason(key, prog.rules.stable_key_scheme)
            if key not in kept:
                classified.quarantine.append(_Quarantine(
                    prog.rules.code, key, None,
                    {"stable_key": key, "note": "an earlier record of this feed"}, [text]))
            if item.action != "keep":
                classified.quarantine.append(_Quarantine(
                    prog.rules.code, key, None,
                    item.raw or {"stable_key": key, "position": item.position}, [text]))
        if earlier:
            merge.keep_instead(session, self._run_id, prog.programme.id,
                               [k for k in earlier if k not in kept])
            kept.update(earlier)
        met.update(items)
        kept.update(key for key, item in items.items() if item.action == "keep")

    def _quarantine(self, session: Session, entries: Iterable[_Quarantine]) -> None:
        """Record refused records: one entry per (connection, record key, reason code);
        a repeat bumps its count, a dismissed entry stays dismissed until the record
        changes."""
        entries = list(entries)
        self.counts["quarantined"] += len(entries)
        if self.dry_run:  # a dry run changes nothing, the quarantine included
            return
        now = clock.now()
        keyed: dict[tuple[str, str], tuple[_Quarantine, str]] = {}
        for entry in entries:
            digest = record_digest(entry.raw)
            record_key = (f"{entry.programme}:{entry.stable_key}" if entry.stable_key
                          else f"sha256:{digest[:64]}")[:80]
            keyed[(record_key, entry.reasons[0]["code"])] = (entry, digest)
        existing: dict[tuple[str, str], QuarantinedRecord] = {}
        keys = list({k for k, _ in keyed})
        for start in range(0, len(keys), 500):
            for row in session.scalars(select(QuarantinedRecord).where(
                    QuarantinedRecord.connection_id == self.connection_id,
                    QuarantinedRecord.record_key.in_(keys[start:start + 500]))):
                existing[(row.record_key, row.reason_code)] = row
        for (record_key, code), (entry, digest) in keyed.items():
            found = existing.get((record_key, code))
            if found is None:
                session.add(QuarantinedRecord(
                    connection_id=self.connection_id, run_id=self.run_id,
                    programme=entry.programme, stable_key=entry.stable_key,
                    record_key=record_key, reason_code=code, record_digest=digest,
                    operator_id=entry.operator_id, position=entry.raw.get("position"),
                    record=entry.raw, reasons=entry.reasons, status="open", seen_count=1,
                    created_at=now, last_seen_at=now))
                continue
            row = found
            row.seen_count += 1
            row.last_seen_at = now
            row.run_id = self.run_id
            row.operator_id = entry.operator_id
            changed = row.record_digest != digest
            if changed or row.status in ("resolved", "replayed"):
                row.record, row.reasons, row.record_digest = entry.raw, entry.reasons, digest
                row.position = entry.raw.get("position")
                if row.status != "open":
                    row.status, row.resolved_at, row.resolved_by = "open", None, None

    # -- the switch -----------------------------------------------------------------------

    def _switch(self, *, confirmed: bool, final_state: dict[str, Any]) -> None:
        """Apply the staged snapshot in one transaction, unless a guard holds it."""
        with self.database.session_scope(write=True) as session:
            self._fence(session)
            diff = merge.difference(session, self._run_id, self.scope, snapshot=True)
            reason = None if confirmed else self._guard(diff, snapshot=True)
            if reason and not self.dry_run:
                self._hold(session, reason, diff, staged_state=final_state)
                return
            self._count(diff)
            if self.dry_run:
                self._succeed(session, would_hold=reason)
                return
            kill_point("before-switch")
            merge.merge(session, self._run_id, self.scope, diff, snapshot=True,
                        now=clock.now(), source=self.source)
            kill_point("in-switch")
            self._resolve_quarantine(session, snapshot=True)
            merge.drop_staged(session, self._run_id)
            connection = session.get(Connection, self.connection_id)
            assert connection is not None
            # an incremental source read whole (`--snapshot`) goes on from its end
            connection.state = final_state if self.incremental_source else {}
            self._succeed(session)

    def _resolve_quarantine(self, session: Session, *, snapshot: bool) -> None:
        """Close the open entries this run did not meet again: after a whole snapshot,
        every one (the feed no longer holds that record as it was); after an incremental
        page, those whose key now synced cleanly."""
        condition = QuarantinedRecord.run_id.is_distinct_from(self.run_id)
        if not snapshot:
            condition = and_(condition, QuarantinedRecord.stable_key.in_(
                select(StagedRecord.stable_key).where(
                    StagedRecord.run_id == self.run_id,
                    StagedRecord.action.in_(("create", "update", "same")))))
        session.execute(
            update(QuarantinedRecord).where(
                QuarantinedRecord.connection_id == self.connection_id,
                QuarantinedRecord.status == "open", condition)
            .values(status="resolved", resolved_at=clock.now(), resolved_by="sync",
                    resolution_note=f"no longer refused (run {self.run_id})"),
            execution_options={"synchronize_session": False})

    # -- guards, outcomes -------------------------------------------------------------------

    def _too_many_quarantined(self) -> bool:
        quarantined, read = self.counts["quarantined"], self.counts["read"]
        return (quarantined > self.limits.quarantined and read > 0
                and quarantined / read > self.limits.quarantine_share)

    def _quarantine_message(self) -> str:
        quarantined, read = self.counts["quarantined"], self.counts["read"]
        return (f"{quarantined} of {read} records ({quarantined / max(read, 1):.0%}) were "
                "quarantined, more than this connection allows")

    def _guard(self, diff: merge.Difference, *, snapshot: bool) -> str | None:
        """Why the run must be held (every reason, joined), or None."""
        if snapshot and self.counts["read"] == 0:
            return "the feed is empty: applying it would remove every operator"
        reasons = []
        if snapshot and self._too_many_quarantined():
            reasons.append(self._quarantine_message())
        if snapshot and self.counts["untied"] and diff.total("removed"):
            reasons.append(
                f"{self.counts['untied']} rejected record(s) could not be tied to any "
                f"operator while the run would remove {diff.total('removed')}: one of them "
                "may be an operator it would remove")
        for prog in self.programmes.values():
            programme_id = prog.programme.id
            listed = diff.listed.get(programme_id, 0)
            if listed == 0:
                continue
            for figures, count_name, share, what in (
                    (diff.removed, "removed", self.limits.removal_share, "would be removed"),
                    (diff.status_changes, "status_changes", self.limits.change_share,
                     "would change status or consent"),
                    (diff.clearing, "clearing", self.limits.change_share,
                     "would lose a value they hold (a column missing from the feed?)")):
                # an incremental run: with the pages it already applied
                found = figures.get(programme_id, 0) + (
                    0 if snapshot else self.counts.get(count_name, 0))
                if found / listed > share:
                    reasons.append(f"{found} of {listed} {prog.rules.code} operators "
                                   f"({found / listed:.0%}) {what}, more than the "
                                   f"{share:.0%} allowed")
        return "; ".join(reasons) or None

    def _count(self, diff: merge.Difference) -> None:
        if self.snapshot:  # the whole run's staged rows: repeats already taken out
            self.counts["unchanged"] = diff.unchanged
        self.counts["created"] += diff.total("created")
        self.counts["updated"] += diff.total("updated")
        self.counts["removed"] += diff.total("removed")
        self.counts["status_changes"] = (self.counts.get("status_changes", 0)
                                         + diff.total("status_changes"))
        self.counts["clearing"] = self.counts.get("clearing", 0) + diff.total("clearing")

    def _fence(self, session: Session) -> None:
        """Every step a run commits renews its lease in the same transaction, and is
        refused if the lease is no longer the run's (`lease.hold`)."""
        ttl = dt.timedelta(seconds=self.settings.lease_seconds)
        if not lease.hold(session, self.connection_id, self.holder, ttl):
            raise LeaseLost(
                f"this run's lease on connection {self.connection_id} was taken over by "
                "another process (it expired while the run was held up); this step was "
                "not applied")

    def _save(self, session: Session, state: dict[str, Any]) -> None:
        """The run's counts and the connector state reached, with the staged batch."""
        self._fence(session)
        session.execute(update(SyncRun).where(SyncRun.id == self.run_id).values(
            counts=dict(self.counts), staged_state=dict(state), heartbeat_at=clock.now()))

    def _hold(self, session: Session, reason: str, diff: merge.Difference, *,
              staged_state: dict[str, Any]) -> None:
        self._fence(session)
        run = session.get(SyncRun, self.run_id)
        assert run is not None
        would = dict(self.counts)
        would.update(created=diff.total("created"), updated=diff.total("updated"),
                     removed=diff.total("removed"))
        run.status = "needs_confirmation"
        run.held_reason = reason
        run.counts = would
        run.staged_state = staged_state
        run.finished_at = clock.now()
        self.counts = would
        audit_hooks.sync_outcome(session, self._run_id, "held", trigger=self.trigger)

    def _succeed(self, session: Session, *, would_hold: str | None = None) -> None:
        self._fence(session)
        now = clock.now()
        run = session.get(SyncRun, self.run_id)
        assert run is not None
        run.status = "succeeded"
        if self.dry_run:
            run.held_reason = would_hold  # why applying it would be held
        run.counts = dict(self.counts)
        run.finished_at = now
        if self.dry_run:
            return
        connection = session.get(Connection, self.connection_id)
        assert connection is not None
        connection.last_success_at = now
        connection.last_run_at = now
        connection.consecutive_failures = 0
        session.execute(update(Programme).where(Programme.id.in_(self.scope.programme_ids))
                        .values(data_version=now))
        audit_hooks.sync_outcome(session, self._run_id, "succeeded", trigger=self.trigger)

    def _fail(self, exc: Exception) -> None:
        message = safe_text(redact_text(str(exc) or type(exc).__name__))
        log.warning("sync of connection %s failed: %s", self.connection_id, message,
                    exc_info=not isinstance(exc, ConnectorError | Conflict))
        if self.run_id is None:
            raise exc
        with self.database.session_scope(write=True) as session:
            run = session.get(SyncRun, self.run_id)
            assert run is not None
            run.status = "failed"
            run.stopped_by_guard = isinstance(exc, GuardStopped)
            run.error = message
            run.counts = dict(self.counts)
            run.finished_at = now = clock.now()
            if not self.dry_run:
                connection = session.get(Connection, self.connection_id)
                assert connection is not None
                connection.last_run_at = connection.last_failure_at = now
                connection.consecutive_failures += 1
            if run.snapshot:
                merge.drop_staged(session, self._run_id)
            audit_hooks.sync_outcome(session, self._run_id, "failed", trigger=self.trigger)

    def _result(self) -> SyncRun | None:
        if self.run_id is None:
            return None
        with self.database.session_scope() as session:
            run = session.get(SyncRun, self.run_id)
            if run is not None:
                session.expunge(run)
            return run


def run_sync(database: Database, settings: SyncSettings, connection_id: int, *,
             trigger: str = "manual", dry_run: bool = False,
             scheduled_for: dt.datetime | None = None,
             progress: Progress | None = None, snapshot: bool = False) -> SyncRun | None:
    """Run one sync of a connection. Returns the run (None when its slot was taken).

    `snapshot` reads an incremental source whole, as a snapshot that removes what it no
    longer lists (to reconcile it). Raises `LeaseBusy` when another process is syncing
    the connection.
    """
    job = SyncJob(database, settings, connection_id, trigger=trigger, dry_run=dry_run,
                  scheduled_for=scheduled_for, progress=progress, snapshot=snapshot)
    return job.run()


def _held(session: Session, run_id: int) -> SyncRun:
    run = session.get(SyncRun, run_id)
    if run is None:
        raise NotFound(f"no sync run {run_id}")
    if run.status != "needs_confirmation":
        raise InvalidInput(f"run {run_id} is {run.status}, not waiting for confirmation",
                           fields={"run": run.status})
    return run


def confirm(database: Database, settings: SyncSettings, run_id: int) -> SyncRun:
    """Apply a held run as it was staged, skipping the guards."""
    with database.session_scope() as session:
        run = _held(session, run_id)
        connection_id, snapshot = run.connection_id, run.snapshot
        counts, staged_state = dict(run.counts), dict(run.staged_state or {})
    job = SyncJob(database, settings, connection_id, trigger="manual", dry_run=False,
                  scheduled_for=None, progress=None, snapshot=snapshot)
    if not lease.acquire(database, connection_id, job.holder,
                         dt.timedelta(seconds=settings.lease_seconds)):
        raise LeaseBusy(f"connection {connection_id} is being synced; confirm again later")
    try:
        connector = job._load()
        job.incremental_source = connector.discover().incremental if snapshot else True
        with database.session_scope() as session:
            _held(session, run_id)  # still held now that this process has the lease
        job.run_id, job.snapshot = run_id, snapshot
        job.counts.update({k: int(v) for k, v in counts.items() if k in job.counts})
        job.counts.update(created=0, updated=0, removed=0, status_changes=0, clearing=0)
        if snapshot:
            job._switch(confirmed=True, final_state=staged_state)
        else:
            with database.session_scope(write=True) as session:
                diff = merge.difference(session, run_id, job.scope, snapshot=False)
                job._count(diff)
                merge.merge(session, run_id, job.scope, diff, snapshot=False, now=clock.now(),
                            source=job.source)
                job._resolve_quarantine(session, snapshot=False)
                merge.drop_staged(session, run_id)
                connection = session.get(Connection, connection_id)
                assert connection is not None
                connection.state = staged_state
                job._succeed(session)
    finally:
        lease.release(database, connection_id, job.holder)
    result = job._result()
    assert result is not None
    return result


def discard(database: Database, run_id: int) -> SyncRun:
    """Drop a held run without applying it."""
    with database.session_scope(write=True) as session:
        run = _held(session, run_id)
        merge.drop_staged(session, run_id)
        run.status = "discarded"
        run.finished_at = run.finished_at or clock.now()
        audit_hooks.sync_outcome(session, run_id, "discarded")
        session.flush()
        session.expunge(run)
        return run


def abandon_dead_runs(database: Database) -> list[int]:
    """Settle the runs still `running` whose process is gone (no live lease on their
    connection); returns the ids of those marked `abandoned`.

    A dead run that staged nothing is abandoned: there is nothing to resume. One with
    staged rows is left for the next run of its connection to resume or abandon. A dead
    run started by a notification, and still its connection's latest run, gives the
    notification back (`SyncJob._take_notification` took it): the follow-up run serves
    the node's change, resuming the dead run when it can, instead of the next slot."""
    now = clock.now()
    with database.session_scope(write=True) as session:
        dead = session.scalars(select(SyncRun).where(
            SyncRun.status == "running",
            SyncRun.connection_id.not_in(lease.live_connections(now)))).all()
        staged = set(session.scalars(select(StagedRecord.run_id).distinct().where(
            StagedRecord.run_id.in_([run.id for run in dead]))))
        latest = set(session.scalars(select(func.max(SyncRun.id)).where(
            SyncRun.connection_id.in_({run.connection_id for run in dead}))
            .group_by(SyncRun.connection_id)))
        abandoned = []
        for run in dead:
            if run.trigger == "notify" and run.id in latest and session.execute(
                    update(Connection).where(Connection.id == run.connection_id,
                                             Connection.enabled.is_(True),
                                             Connection.notify_requested_at.is_(None))
                    .values(notify_requested_at=run.started_at)).rowcount:  # type: ignore[attr-defined]
                log.info("notified run %s of connection %s died; its notification is "
                         "given back", run.id, run.connection_id)
            if run.id in staged:
                continue
            run.status = "abandoned"
            run.finished_at = now
            run.error = "the process running it stopped before it staged anything"
            audit_hooks.sync_outcome(session, run.id, "abandoned", trigger=run.trigger)
            abandoned.append(run.id)
        return abandoned


__all__ = ["COUNT_NAMES", "LeaseBusy", "LeaseLost", "abandon_dead_runs", "confirm",
           "discard", "run_sync"]
