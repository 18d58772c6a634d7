"""Run a sync: read, recognise unchanged, validate, quarantine, diff, guard, apply.

Snapshot feeds are staged batch by batch (each staged batch is committed with the
connector state reached, so a killed run resumes) and switched in one transaction at the
end; removals are computed only from a complete snapshot. A snapshot is read and
validated in a forked child while this process stages the batch before and builds its
creations' rows for the switch (`SyncJob._sorted_snapshot`, `SyncJob._prepare`).
Incremental feeds commit each batch with its checkpoint. Guards hold a run
(`needs_confirmation`) that would remove or change the status of too large a share of a
programme, or that read an empty snapshot; `confirm` applies a held run and `discard`
drops it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connectors.base import (
    Batch,
    CanonicalRecord,
    Connector,
    ConnectorError,
    DeferredRecords,
)
from hub import gcpause, jsonio
from hub.audit import hooks as audit_hooks
from hub.db import Database, sqlite_page_cache, utcnow
from hub.errors import Conflict, InvalidInput, NotFound
from hub.logs import redact_text
from hub.registry.models import Programme
from hub.registry.service import OperatorData
from hub.sync import apply, forked, lease
from hub.sync.connections import SyncSettings, build
from hub.sync.models import Connection, QuarantinedRecord, StagedBatch, SyncRun
from hub.sync.spool import Spool
from hub.sync.validate import (
    ProgrammeRules,
    Rejection,
    record_to_dict,
    schema_load,
    stable_key_of,
    validate_canonical,
    validate_record,
)

log = logging.getLogger(__name__)
COUNT_NAMES = ("read", "created", "updated", "unchanged", "removed", "quarantined")
Progress = Callable[[dict[str, int]], None]


class LeaseBusy(Conflict):
    title = "Sync already running"


class LeaseLost(Conflict):
    title = "Sync lease lost"


@dataclass
class _ProgrammeRun:
    programme: Programme
    rules: ProgrammeRules
    index: apply.ProgrammeIndex
    seen: set[str] = field(default_factory=set)
    # keys seen unchanged in batches already staged
    seen_all: set[str] = field(default_factory=set)
    quarantined_keys: set[str] = field(default_factory=set)
    pending: dict[str, OperatorData] = field(default_factory=dict)
    deletions: set[str] = field(default_factory=set)
    # snapshot runs: every key met so far, and keys met more than once
    run_keys: set[str] = field(default_factory=set)
    duplicates: set[str] = field(default_factory=set)

    def removal_ids(self) -> list[int]:
        """Operator ids of the tombstoned keys that are still listed (a tombstone for an
        unknown or already removed operator changes nothing)."""
        ids = []
        for key in self.deletions:
            entry = self.index.by_key.get(key)
            if entry is not None and not entry.removed:
                ids.append(entry.operator_id)
        return ids


def rules_for(programme: Programme) -> ProgrammeRules:
    return ProgrammeRules(programme.code, programme.primary_scheme,
                          programme.stable_key_scheme, programme.authorisation_scheme,
                          frozenset(programme.category_codes()))


def _data_to_json(data: OperatorData) -> dict[str, Any]:
    values = {k: (v.isoformat() if isinstance(v, dt.date | dt.datetime) else v)
              for k, v in data.values.items()}
    return {"stable_key": data.stable_key, "values": values,
            "identifiers": [list(i) for i in data.identifiers]}


_DATE_VALUES = ("status_effective", "authorised_on", "valid_from", "valid_until")
# The values `validate_record` produces, in the order a compact staged entry lists them.
_STAGED_FIELDS = (
    "authorisation_number", "trader_id_scheme", "trader_id", "legal_name", "street", "city",
    "postcode", "region", "country", "status", "status_effective", "categories",
    "issuing_authority", "authorised_on", "valid_from", "valid_until", "consent_share",
    "consent_publish", "source_changed_at", "fingerprint", "warnings",
)
_STAGED_NAMES = frozenset(_STAGED_FIELDS)
_STAGED_DATES = tuple(_STAGED_FIELDS.index(name) for name in _DATE_VALUES)
_STAGED_CHANGED_AT = _STAGED_FIELDS.index("source_changed_at")


def _data_to_staged(code: str, data: OperatorData) -> list[Any] | dict[str, Any]:
    """A staged upsert: compact `[programme, stable key, [values...], identifiers]`.

    Dates and timestamps stay objects: the staged batch's codec (orjson, see
    `hub.sync.models.PackedJSON`) writes them in their ISO form, as `_data_to_json` does.
    """
    values = data.values
    if tuple(values) == _STAGED_FIELDS:  # validation's own order: the values as they are
        return [code, data.stable_key, list(values.values()), data.identifiers]
    if values.keys() != _STAGED_NAMES:
        return {"programme": code, **_data_to_json(data)}
    return [code, data.stable_key, [values[name] for name in _STAGED_FIELDS],
            data.identifiers]


def _staged_entry(entry: list[Any] | dict[str, Any], *, as_staged: bool = False
                  ) -> tuple[str, OperatorData]:
    """(programme, data) of a staged upsert, compact or in the dict form.

    `as_staged` leaves dates and times in their ISO form, as `apply.write` takes them for
    a creation (they go to the database and into events as they are).
    """
    if isinstance(entry, dict):
        if as_staged:
            return entry["programme"], OperatorData(
                entry["stable_key"], dict(entry["values"]),
                [(s, v, o, bool(linked)) for s, v, o, linked in entry["identifiers"]])
        return entry["programme"], _data_from_json(entry)
    code, key, row, identifiers = entry
    # a compact entry's identifiers were staged from tuples (`linked` a JSON boolean)
    identifiers = list(map(tuple, identifiers))
    if as_staged:
        return code, OperatorData(key, dict(zip(_STAGED_FIELDS, row, strict=True)),
                                  identifiers)
    row = list(row)
    for i in _STAGED_DATES:
        if row[i]:
            row[i] = dt.date.fromisoformat(row[i])
    if row[_STAGED_CHANGED_AT]:
        row[_STAGED_CHANGED_AT] = dt.datetime.fromisoformat(row[_STAGED_CHANGED_AT])
    return code, OperatorData(key, dict(zip(_STAGED_FIELDS, row, strict=True)), identifiers)


def _staged_key(entry: list[Any] | dict[str, Any]) -> tuple[str, str]:
    if isinstance(entry, dict):
        return entry["programme"], entry["stable_key"]
    return entry[0], entry[1]


def _data_from_json(item: dict[str, Any]) -> OperatorData:
    values = dict(item["values"])
    for name in _DATE_VALUES:
        if values.get(name):
            values[name] = dt.date.fromisoformat(values[name])
    if values.get("source_changed_at"):
        values["source_changed_at"] = dt.datetime.fromisoformat(values["source_changed_at"])
    return OperatorData(item["stable_key"], values,
                        [(s, v, o, bool(linked)) for s, v, o, linked in item["identifiers"]])


#: Net new container objects (allocated, not yet freed) that make `_collect_young` collect.
YOUNG_LIMIT = 200_000


def _collect_young() -> None:
    """While collection is paused: collect the young generations (never the old one) once
    `YOUNG_LIMIT` objects have accumulated in them since the last collection.

    A run (and a confirmed switch) pauses automatic collection (`gcpause.paused`): a sync
    keeps large, long-lived structures (the programme index, the keys seen) and allocates
    millions of short-lived objects, and CPython's collector would traverse the long-lived
    ones again and again (a quarter of a full sync's time). This is called after each
    batch, so cyclic garbage is still freed (a sync makes little: it is mostly freed by
    reference counting), and the old generation waits for the first collection after the
    run.
    """
    if not gc.isenabled() and gc.get_count()[0] >= YOUNG_LIMIT:
        gc.collect(1)


@dataclass
class _Sorted:
    """One batch of a snapshot as sorting leaves it, ready to stage. It crosses from the
    sorting child to the parent (`SyncJob._sorted_snapshot`), so it holds plain data."""

    seen: dict[str, list[str]]  # programme: keys seen unchanged
    upserts: bytes  # the staged upserts, packed (`jsonio.pack`)
    deletions: list[dict[str, str]]
    quarantined: list[dict[str, Any]]  # QuarantinedRecord values
    duplicates: list[tuple[str, str]]  # (programme, key) met twice, first in this batch
    counts: dict[str, int]  # the run's counts after this batch
    state: dict[str, Any]
    complete: bool


class SyncJob:
    """One run of one connection. Use `run_sync` rather than this class directly."""

    def __init__(self, database: Database, settings: SyncSettings, connection_id: int, *,
                 trigger: str, dry_run: bool, scheduled_for: dt.datetime | None,
                 progress: Progress | None) -> None:
        self.database = database
        self.settings = settings
        self.connection_id = connection_id
        self.trigger = trigger
        self.dry_run = dry_run
        self.scheduled_for = scheduled_for
        self.progress = progress
        self.holder = lease.holder_id()
        self.counts = dict.fromkeys((*COUNT_NAMES, "status_changes"), 0)
        self.run_id: int | None = None
        self.programmes: dict[str, _ProgrammeRun] = {}
        self.staged_seq = 0
        self.dry_staged: list[dict[str, Any]] = []
        self.snapshot = False
        # quarantined records sorted and not yet written, and duplicate keys found
        self.held_back: list[dict[str, Any]] = []
        self.new_duplicates: list[tuple[str, str]] = []
        # creations built while the child sorts, waiting for the switch (`_prepare`)
        self.spool: Spool | None = None

    # -- set-up -------------------------------------------------------------------------

    def _claim(self) -> bool:
        """Create the run row; False when this schedule slot was already claimed."""
        try:
            with self.database.session_scope(write=True) as session:
                run = SyncRun(connection_id=self.connection_id, trigger=self.trigger,
                              status="running", dry_run=self.dry_run,
                              scheduled_for=self.scheduled_for, started_at=utcnow(),
                              heartbeat_at=utcnow(), counts=dict(self.counts))
                session.add(run)
                session.flush()
                self.run_id = run.id
            return True
        except IntegrityError:
            return False

    def _adopt_interrupted(self, session: Session, run: SyncRun) -> dict[str, Any] | None:
        """Take over the staged batches of a snapshot run that died (its lease expired)."""
        previous = session.scalar(
            select(SyncRun).where(SyncRun.connection_id == self.connection_id,
                                  SyncRun.status == "running", SyncRun.id != run.id,
                                  SyncRun.dry_run.is_(False), SyncRun.snapshot.is_(True))
            .order_by(SyncRun.id.desc()))
        if previous is None:
            return None
        session.execute(update(StagedBatch).where(StagedBatch.run_id == previous.id)
                        .values(run_id=run.id))
        previous.status = "failed"
        previous.finished_at = utcnow()
        previous.error = f"interrupted; resumed by run {run.id}"
        self.staged_seq = int(session.scalar(
            select(StagedBatch.seq).where(StagedBatch.run_id == run.id)
            .order_by(StagedBatch.seq.desc()).limit(1)) or 0)
        return dict(previous.staged_state or {})

    def _load_programmes(self, session: Session, codes: Iterable[str]) -> None:
        for programme in session.scalars(select(Programme).where(Programme.code.in_(list(codes)))):
            self.programmes[programme.code] = _ProgrammeRun(
                programme, rules_for(programme),
                apply.ProgrammeIndex.load(session, programme.id))

    # -- the run ------------------------------------------------------------------------

    def run(self) -> SyncRun | None:
        ttl = dt.timedelta(seconds=self.settings.lease_seconds)
        if not lease.acquire(self.database, self.connection_id, self.holder, ttl):
            raise LeaseBusy(f"connection {self.connection_id} is being synced by another "
                            "process; try again when that run ends")
        try:
            if not self._claim():
                return None
            with (lease.Heartbeat(self.database, self.connection_id, self.holder, ttl),
                  gcpause.paused()):  # see `_collect_young`
                self._execute()
        except Exception as exc:
            self._fail(exc)
        finally:
            if self.spool is not None:
                self.spool.close()
            lease.release(self.database, self.connection_id, self.holder)
        return self._result()

    def _execute(self) -> None:
        with self.database.session_scope() as session:
            connection = session.get(Connection, self.connection_id)
            assert connection is not None
            connector = build(connection, self.settings)
            codes = list(connection.programmes)
            start_state = dict(connection.state or {})
            run = session.get(SyncRun, self.run_id)
            assert run is not None
        discovery = connector.discover()
        incremental = discovery.incremental
        with self.database.session_scope(write=True) as session:
            run = session.get(SyncRun, self.run_id)
            assert run is not None
            run.snapshot = not incremental
            self.snapshot = not incremental
            if not incremental:
                start_state = {}
                if not self.dry_run:
                    resumed = self._adopt_interrupted(session, run)
                    if resumed is not None:
                        start_state = resumed
                        run.staged_state = resumed
            self._load_programmes(session, codes)
            if not incremental and self.staged_seq:
                self._restore_staged(session)
        if incremental:
            for batch in connector.read(start_state or None):
                if self._incremental_batch(batch):
                    return
                _collect_young()
                self._report_progress()
            self._finish_incremental()
            return
        complete = False
        # closed on the way out, whatever happens: a sorting child ends before the run does
        batches = self._sorted_snapshot(connector, start_state or None)
        with contextlib.closing(batches):
            for sorted_batch in batches:
                self._stage_batch(sorted_batch)
                complete = sorted_batch.complete
                _collect_young()
                self._report_progress()
        if not complete:
            raise ConnectorError("the snapshot ended without its completeness mark; "
                                 "nothing was applied")
        self._switch_snapshot()

    def _report_progress(self) -> None:
        if self.progress:
            self.progress(dict(self.counts))

    def _sorted_snapshot(self, connector: Connector, state: dict[str, Any] | None
                         ) -> Generator[_Sorted, None, None]:
        """The snapshot's batches, read, recognised and validated, in order.

        With `sort_in_child` (the default, where the system can fork), the reading and
        validating runs in a forked child (`hub.sync.forked`) while this process stages
        the batch before: the CPU work of one overlaps the database work of the other.
        The child reads the registry index as it was when the snapshot began (a snapshot
        run applies nothing until its switch) and never touches the database.
        """
        batches = self._sort_batches(connector, state)
        if self.settings.sort_in_child and forked.available():
            if not self.dry_run:
                self.spool = Spool()  # this process has time to build creations
            return forked.in_child(batches, name="sync sorter", after_fork=self._after_fork)
        return batches

    def _sort_batches(self, connector: Connector, state: dict[str, Any] | None
                      ) -> Generator[_Sorted, None, None]:
        for batch in connector.read(state):
            self._sort_records(batch)
            yield self._take_sorted(batch)
            _collect_young()

    def _after_fork(self) -> None:
        """In the sorting child: drop the copy of the parent's connection pool, without
        closing the connections the parent goes on using."""
        self.database.engine.dispose(close=False)

    # -- record handling ------------------------------------------------------------------

    def _quarantine(self, raw: dict[str, Any], reasons: list[dict[str, str]],
                    programme: str | None, stable_key: str | None) -> None:
        """Count a refused record and hold it back until its batch is written (which
        records its key for the switch: `_write_sorted`)."""
        self.counts["quarantined"] += 1
        self.held_back.append({"programme": programme, "stable_key": stable_key,
                               "position": raw.get("position"), "record": raw,
                               "reasons": reasons})

    def _write_quarantined(self, session: Session, quarantined: list[dict[str, Any]]) -> None:
        if self.dry_run:
            return
        session.add_all(QuarantinedRecord(connection_id=self.connection_id,
                                          run_id=self.run_id, **values)
                        for values in quarantined)

    def _sort_records(self, batch: Batch) -> None:
        """Recognise unchanged records by fingerprint, validate the rest.

        A fingerprint is that of a stored operator only if a record with the same source
        form was valid, so a match is unchanged without parsing or validating it; records
        a connector defers (`DeferredRecords`) are parsed only when their fingerprint is
        new.
        """
        records = batch.records
        deferred = records if isinstance(records, DeferredRecords) else None
        self.counts["read"] += len(records)
        for i in range(len(records)):
            record: CanonicalRecord | None = None
            if deferred is not None:
                fingerprint, code = deferred.fingerprints[i], deferred.programmes[i]
            else:
                record = records[i]
                fingerprint = "" if record.problems else record.fingerprint
                code = record.programme
            prog = self.programmes.get(code or "")
            if prog is not None and fingerprint:
                key = prog.index.by_fingerprint.get(fingerprint)
                if key is not None and key not in prog.pending:
                    if key in prog.seen or self._met_before(prog, key):
                        self._duplicate(prog, record_to_dict(records[i]), key)
                    else:
                        prog.seen.add(key)
                        prog.run_keys.add(key)
                        self.counts["unchanged"] += 1
                    continue
            if record is None:
                record = records[i]
                prog = self.programmes.get(record.programme or "")
            if prog is None:
                self._quarantine(record_to_dict(record), [{
                    "field": "programme",
                    "reason": f"{record.programme!r} is not a programme of this connection "
                              f"({', '.join(self.programmes)})"}], record.programme, None)
                continue
            raw: dict[str, Any] | None = None
            result: OperatorData | Rejection | None = validate_canonical(record, prog.rules)
            if result is None:
                raw = record_to_dict(record)
                result = validate_record(raw, prog.rules)
            if isinstance(result, Rejection):
                assert raw is not None
                self._quarantine(raw, result.reasons, prog.rules.code, result.stable_key)
                continue
            key = result.stable_key
            if (key in prog.pending or key in prog.seen or key in prog.duplicates
                    or self._met_before(prog, key)):
                if raw is None:
                    # the record as validation leaves it (country and status normalised)
                    raw = record_to_dict(record)
                    schema_load(raw)
                self._duplicate(prog, raw, key)
                continue
            prog.pending[key] = result
            prog.run_keys.add(key)
        for deletion in batch.deletions:
            prog = self.programmes.get(deletion.programme or "")
            if prog is None and len(self.programmes) == 1:
                prog = next(iter(self.programmes.values()))
            if prog is None:
                continue
            key = stable_key_of({"trader_id_scheme": deletion.trader_id_scheme,
                                 "trader_id": deletion.trader_id, "identifiers": []},
                                prog.rules)
            if key:
                prog.pending.pop(key, None)
                prog.deletions.add(key)

    def _met_before(self, prog: _ProgrammeRun, key: str) -> bool:
        """A snapshot lists each operator once: a key met in an earlier batch is a duplicate."""
        return self.snapshot and key in prog.run_keys

    def _duplicate(self, prog: _ProgrammeRun, raw: dict[str, Any], key: str) -> None:
        """Two records with one stable key in one feed: quarantine both, merge nothing."""
        reason = {"field": prog.rules.stable_key_scheme,
                  "reason": f"stable key {key} appears more than once in this feed; "
                            "the operator keeps its last good state"}
        if key not in prog.duplicates:
            prog.duplicates.add(key)
            self.new_duplicates.append((prog.rules.code, key))
        earlier = prog.pending.pop(key, None)
        if earlier is not None:
            self._quarantine({"stable_key": key, "values": _data_to_json(earlier)},
                             [reason], prog.rules.code, key)
        if key in prog.seen:
            prog.seen.discard(key)
            self.counts["unchanged"] -= 1
            self._quarantine({"stable_key": key, "note": "unchanged record"},
                             [reason], prog.rules.code, key)
        self._quarantine(raw, [reason], prog.rules.code, key)

    # -- incremental ------------------------------------------------------------------------

    def _incremental_batch(self, batch: Batch) -> bool:
        """Apply one batch with its checkpoint; True when a guard held the run."""
        now = utcnow()
        with (self.database.session_scope(write=True) as session,
              sqlite_page_cache(session, self.settings.sqlite_cache_mib)):
            self._sort_records(batch)
            plans = {}
            for code, prog in self.programmes.items():
                the_plan = apply.plan(session, prog.index, prog.pending.values(), now.date())
                the_plan.removals = prog.removal_ids()
                plans[code] = the_plan
            reason = self._guard(plans, snapshot=False)
            if reason and not self.dry_run:
                self._write_sorted(session, self._take_sorted(batch))
                self._hold(session, reason)
                return True
            self._write_quarantined(session, self._take_quarantined())
            for code, prog in self.programmes.items():
                self._count_plan(plans[code])
                if not self.dry_run:
                    apply.write(session, prog.index, plans[code], now=now,
                                source=self._source(), run_id=self.run_id)
                prog.pending.clear()
                prog.deletions.clear()
            if not self.dry_run:
                connection = session.get(Connection, self.connection_id)
                assert connection is not None
                connection.state = dict(batch.state)
                self._save_counts(session)
            else:
                session.rollback()
        return False

    def _finish_incremental(self) -> None:
        with self.database.session_scope(write=True) as session:
            self._succeed(session)

    # -- snapshot ---------------------------------------------------------------------------

    def _take_quarantined(self) -> list[dict[str, Any]]:
        quarantined, self.held_back = self.held_back, []
        return quarantined

    def _take_sorted(self, batch: Batch) -> _Sorted:
        """What sorting `batch` left, to stage; the programmes start the next batch."""
        sorted_batch = _Sorted(
            seen={code: sorted(p.seen) for code, p in self.programmes.items()},
            upserts=jsonio.pack([_data_to_staged(code, d) for code, p in self.programmes.items()
                                 for d in p.pending.values()]),
            deletions=[{"programme": code, "stable_key": k}
                       for code, p in self.programmes.items() for k in p.deletions],
            quarantined=self._take_quarantined(), duplicates=self.new_duplicates,
            counts=dict(self.counts), state=dict(batch.state), complete=batch.complete)
        self.new_duplicates = []
        for prog in self.programmes.values():
            prog.seen = set()
            prog.pending.clear()
            prog.deletions.clear()
        return sorted_batch

    def _write_sorted(self, session: Session, sorted_batch: _Sorted) -> None:
        """Stage a sorted batch, and record here, wherever it was sorted, the counts and
        keys the switch needs: keys seen unchanged, quarantined and met twice (sorting
        knows the last too, for the batches after; in the child, its own copy)."""
        self.counts.update(sorted_batch.counts)
        for code, keys in sorted_batch.seen.items():
            self.programmes[code].seen_all.update(keys)
        for values in sorted_batch.quarantined:
            if values["stable_key"] and values["programme"] in self.programmes:
                self.programmes[values["programme"]].quarantined_keys.add(values["stable_key"])
        for code, key in sorted_batch.duplicates:
            self.programmes[code].duplicates.add(key)
        self._write_quarantined(session, sorted_batch.quarantined)
        self.staged_seq += 1
        run = session.get(SyncRun, self.run_id)
        assert run is not None
        run.staged_state = dict(sorted_batch.state)
        if self.dry_run:
            # as a staged batch reads back: dates and timestamps in their ISO form
            self.dry_staged.append({"upserts": jsonio.unpack(sorted_batch.upserts),
                                    "deletions": sorted_batch.deletions})
        else:
            session.add(StagedBatch(run_id=self.run_id, seq=self.staged_seq,
                                    seen=sorted_batch.seen, upserts=sorted_batch.upserts,
                                    deletions=sorted_batch.deletions))

    def _stage_batch(self, sorted_batch: _Sorted) -> None:
        with self.database.session_scope(write=True) as session:
            self._write_sorted(session, sorted_batch)
            self._save_counts(session)
            if self.dry_run:
                session.rollback()
        if self.spool is not None:
            self._prepare(sorted_batch)

    def _prepare(self, sorted_batch: _Sorted) -> None:
        """Build and encode the rows of the batch's creations now, while the child sorts
        the next batch, and set them aside for the switch (`Spool`). The switch uses them
        only if they are still what it would build (`_prepared_for`)."""
        assert self.spool is not None
        creates: dict[str, list[OperatorData]] = {}
        for entry in jsonio.unpack(sorted_batch.upserts):
            code, key = _staged_key(entry)
            prog = self.programmes[code]
            if key not in prog.index.by_key and key not in prog.duplicates:
                creates.setdefault(code, []).append(_staged_entry(entry, as_staged=True)[1])
        today = utcnow().date()
        dialect = self.database.engine.dialect
        prepared = {code: apply.prepare_creations(
            dialect, self.programmes[code].index.programme_id, records, today=today,
            source=self._source(), run_id=self.run_id).plain()
            for code, records in creates.items()}
        try:
            self.spool.put(self.staged_seq, prepared)
        except OSError as exc:  # no room for the temporary file: the switch builds all
            log.warning("sync of connection %s: creations are built at the switch instead "
                        "of ahead of it (%s)", self.connection_id, exc)
            self.spool.close()
            self.spool = None

    def _prepared_for(self, prepared: dict[str, Any] | None, code: str,
                      entries: list[list[Any] | dict[str, Any]], today: dt.date
                      ) -> apply.PreparedCreations | None:
        """The prepared creations of `code` if they are exactly those of `entries` (the
        staged creations the switch found), for this run and day; else None."""
        plain = (prepared or {}).get(code)
        ready = None if plain is None else apply.PreparedCreations.from_plain(plain)
        if ready is None or ready.today != today or ready.run_id != self.run_id:
            return None
        if ready.keys != [_staged_key(entry)[1] for entry in entries]:
            return None
        return ready

    def _iter_staged(self, session: Session) -> Iterator[dict[str, Any]]:
        """The run's staged batches in order, one at a time (never all in memory)."""
        if self.dry_run:
            for seq, staged in enumerate(self.dry_staged, start=1):
                yield {"seq": seq, **staged}
            return
        seqs = list(session.scalars(select(StagedBatch.seq).where(
            StagedBatch.run_id == self.run_id).order_by(StagedBatch.seq)))
        for seq in seqs:
            row = session.execute(
                select(StagedBatch.seen, StagedBatch.upserts, StagedBatch.deletions)
                .where(StagedBatch.run_id == self.run_id, StagedBatch.seq == seq)).one()
            yield {"seq": seq, "seen": row.seen, "upserts": row.upserts,
                   "deletions": row.deletions}

    def _restore_staged(self, session: Session) -> None:
        """Counts and keys of batches staged by an interrupted run."""
        for staged in self._iter_staged(session):
            for code, keys in staged["seen"].items():
                prog = self.programmes.get(code)
                if prog is not None:
                    prog.seen_all.update(keys)
                    prog.run_keys.update(keys)
                    self.counts["unchanged"] += len(keys)
                    self.counts["read"] += len(keys)
            for entry in staged["upserts"]:
                code, key = _staged_key(entry)
                if code in self.programmes:
                    self.programmes[code].run_keys.add(key)
            self.counts["read"] += len(staged["upserts"])

    def _quarantined_keys(self, session: Session, code: str) -> set[str]:
        if self.run_id is None:
            return set()
        return set(session.scalars(
            select(QuarantinedRecord.stable_key).where(
                QuarantinedRecord.run_id == self.run_id, QuarantinedRecord.programme == code,
                QuarantinedRecord.stable_key.is_not(None))))

    def _staged(self, session: Session) -> list[dict[str, Any]]:
        return list(self._iter_staged(session))

    def _removal_candidates(self, session: Session) -> dict[str, set[str]]:
        """Listed operators the snapshot has not (yet) shown unchanged or quarantined."""
        candidates = {}
        for code, prog in self.programmes.items():
            dropped = prog.seen_all & prog.duplicates
            if dropped:
                prog.seen_all -= dropped
                self.counts["unchanged"] -= len(dropped)
                self.counts["quarantined"] += len(dropped)
                prog.quarantined_keys |= dropped
            quarantined = self._quarantined_keys(session, code)
            candidates[code] = {
                k for k, e in prog.index.by_key.items()
                if not e.removed and k not in prog.seen_all and k not in prog.seen
                and k not in prog.quarantined_keys and k not in quarantined}
        return candidates

    def _switch_snapshot(self, *, confirmed: bool = False) -> None:
        """Apply the staged snapshot in one transaction, one staged batch at a time.

        Creations and updates are written as each staged batch is planned (memory stays
        bounded); removals are known once every batch was read. When a guard then holds
        the run, the transaction is rolled back: nothing of the snapshot is applied.
        """
        now = utcnow()
        reason_for = ("stable key {key} appears more than once in this feed; the operator "
                      "keeps its last good state")
        with (self.database.session_scope(write=True) as session,
              sqlite_page_cache(session, self.settings.sqlite_cache_mib)):
            active = {code: prog.index.active_count() for code, prog in self.programmes.items()}
            candidates = self._removal_candidates(session)
            status_changes = dict.fromkeys(self.programmes, 0)
            duplicates: list[QuarantinedRecord] = []
            for staged in self._iter_staged(session):
                prepared = self.spool.take(staged["seq"]) if self.spool else None
                upserts: dict[str, list[OperatorData]] = {c: [] for c in self.programmes}
                creations: dict[str, list[Any]] = {c: [] for c in self.programmes}
                for entry in staged["upserts"]:
                    code, key = _staged_key(entry)
                    prog = self.programmes[code]
                    if key in prog.duplicates:
                        record = entry if isinstance(entry, dict) else {
                            "programme": code, **_data_to_json(_staged_entry(entry)[1])}
                        duplicates.append(QuarantinedRecord(
                            connection_id=self.connection_id, run_id=self.run_id,
                            programme=prog.rules.code, stable_key=key,
                            record=record, reasons=[{
                                "field": prog.rules.stable_key_scheme,
                                "reason": reason_for.format(key=key)}]))
                        self.counts["quarantined"] += 1
                        continue
                    candidates[code].discard(key)
                    if key in prog.index.by_key:
                        upserts[code].append(_staged_entry(entry)[1])
                    else:
                        creations[code].append(entry)
                _collect_young()
                for code, records in upserts.items():
                    ready = self._prepared_for(prepared, code, creations[code], now.date())
                    if ready is None:  # built here (a creation's values in staged form)
                        records.extend(_staged_entry(entry, as_staged=True)[1]
                                       for entry in creations[code])
                    elif not self.dry_run:
                        apply.write_prepared(session, ready, now=now)
                    if ready is not None:
                        self.counts["created"] += len(ready.keys)
                    if not records:
                        continue
                    prog = self.programmes[code]
                    the_plan = apply.plan(session, prog.index, records, now.date())
                    self._count_plan(the_plan)
                    status_changes[code] += the_plan.status_changes
                    if not self.dry_run:
                        apply.write(session, prog.index, the_plan, now=now,
                                    source=self._source(), run_id=self.run_id, track=False)
            removals = {code: apply.Plan(removals=[
                self.programmes[code].index.by_key[k].operator_id for k in keys])
                for code, keys in candidates.items()}
            reason = None if confirmed else self._guard(
                removals, snapshot=True, active=active, status_changes=status_changes)
            for the_plan in removals.values():
                self._count_plan(the_plan)
            if reason and not self.dry_run:
                session.rollback()
                session.add_all(duplicates)
                self._hold(session, reason)
                return
            if self.dry_run:
                session.rollback()
                with self.database.session_scope() as s2:
                    self._succeed(s2)
                return
            session.add_all(duplicates)
            for code, prog in self.programmes.items():
                apply.write(session, prog.index, removals[code], now=now,
                            source=self._source(), run_id=self.run_id, track=False)
            session.execute(delete(StagedBatch).where(StagedBatch.run_id == self.run_id))
            connection = session.get(Connection, self.connection_id)
            assert connection is not None
            connection.state = {}
            self._succeed(session)

    # -- guards, outcomes -------------------------------------------------------------------

    def _guard(self, plans: dict[str, apply.Plan], *, snapshot: bool,
               active: dict[str, int] | None = None,
               status_changes: dict[str, int] | None = None) -> str | None:
        """Why the run must be held, or None. `active` and `status_changes` (per
        programme), when given, replace the index's count and the plan's."""
        with self.database.session_scope() as session:
            connection = session.get(Connection, self.connection_id)
            assert connection is not None
            max_removal, max_change = connection.max_removal_share, connection.max_change_share
        if snapshot and self.counts["read"] == 0:
            return "the feed is empty: applying it would remove every operator"
        for code, the_plan in plans.items():
            listed = (active[code] if active is not None
                      else self.programmes[code].index.active_count())
            if listed == 0:
                continue
            removed = len(the_plan.removals) + (self.counts["removed"] if not snapshot else 0)
            if removed / listed > max_removal:
                return (f"{removed} of {listed} {code} operators "
                        f"({removed / listed:.0%}) would be removed, more than the "
                        f"{max_removal:.0%} allowed")
            changed = (status_changes[code] if status_changes is not None
                       else the_plan.status_changes) + (
                self.counts["status_changes"] if not snapshot else 0)
            if changed / listed > max_change:
                return (f"{changed} of {listed} {code} operators ({changed / listed:.0%}) "
                        f"would change status or consent, more than the {max_change:.0%} "
                        "allowed")
        return None

    def _count_plan(self, the_plan: apply.Plan) -> None:
        self.counts["created"] += len(the_plan.creates)
        self.counts["updated"] += len(the_plan.updates)
        self.counts["unchanged"] += len(the_plan.refreshes)
        self.counts["removed"] += len(the_plan.removals)
        self.counts["status_changes"] += the_plan.status_changes

    def _source(self) -> str:
        return f"connection:{self.connection_id}"

    def _fence(self, session: Session) -> None:
        """Every step a run commits (a staged or applied batch, the switch, a hold)
        renews its lease in the same transaction, and is refused if the lease is no
        longer the run's: a run that stalled past its lease while another process took
        the connection over applies nothing more (`lease.hold`)."""
        ttl = dt.timedelta(seconds=self.settings.lease_seconds)
        if not lease.hold(session, self.connection_id, self.holder, ttl):
            raise LeaseLost(
                f"this run's lease on connection {self.connection_id} was taken over by "
                "another process (it expired while the run was held up); this step was "
                "not applied")

    def _save_counts(self, session: Session) -> None:
        self._fence(session)
        session.execute(update(SyncRun).where(SyncRun.id == self.run_id)
                        .values(counts=dict(self.counts), heartbeat_at=utcnow()))

    def _hold(self, session: Session, reason: str) -> None:
        self._fence(session)
        run = session.get(SyncRun, self.run_id)
        assert run is not None
        run.status = "needs_confirmation"
        run.held_reason = reason
        run.counts = dict(self.counts)
        run.finished_at = utcnow()
        audit_hooks.sync_outcome(session, self.run_id, "held", trigger=self.trigger)

    def _succeed(self, session: Session) -> None:
        self._fence(session)
        now = utcnow()
        run = session.get(SyncRun, self.run_id)
        assert run is not None
        run.status = "succeeded"
        run.counts = dict(self.counts)
        run.finished_at = now
        if self.dry_run:
            return
        connection = session.get(Connection, self.connection_id)
        assert connection is not None
        connection.last_success_at = now
        connection.last_run_at = now
        connection.consecutive_failures = 0
        for prog in self.programmes.values():
            session.execute(update(Programme).where(Programme.id == prog.programme.id)
                            .values(data_version=now))
        audit_hooks.sync_outcome(session, self.run_id, "succeeded", trigger=self.trigger)

    def _fail(self, exc: Exception) -> None:
        message = redact_text(str(exc) or type(exc).__name__)
        log.warning("sync of connection %s failed: %s", self.connection_id, message)
        if self.run_id is None:
            raise exc
        with self.database.session_scope(write=True) as session:
            run = session.get(SyncRun, self.run_id)
            assert run is not None
            run.status = "failed"
            run.error = message
            run.counts = dict(self.counts)
            run.finished_at = utcnow()
            if not self.dry_run:
                connection = session.get(Connection, self.connection_id)
                assert connection is not None
                connection.last_run_at = utcnow()
                connection.last_failure_at = utcnow()
                connection.consecutive_failures += 1
            audit_hooks.sync_outcome(session, self.run_id, "failed", trigger=self.trigger)

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
             progress: Progress | None = None) -> SyncRun | None:
    """Run one sync of a connection. Returns the run (None when its slot was taken).

    Raises `LeaseBusy` when another process is syncing the connection.
    """
    job = SyncJob(database, settings, connection_id, trigger=trigger, dry_run=dry_run,
                  scheduled_for=scheduled_for, progress=progress)
    return job.run()


def confirm(database: Database, settings: SyncSettings, run_id: int) -> SyncRun:
    """Apply a held run as it was staged, skipping the guards."""
    with database.session_scope() as session:
        run = session.get(SyncRun, run_id)
        if run is None:
            raise NotFound(f"no sync run {run_id}")
        if run.status != "needs_confirmation":
            raise InvalidInput(f"run {run_id} is {run.status}, not waiting for confirmation",
                               fields={"run": run.status})
        connection_id, snapshot, counts = run.connection_id, run.snapshot, dict(run.counts)
        staged_state = dict(run.staged_state or {})
    job = SyncJob(database, settings, connection_id, trigger="manual", dry_run=False,
                  scheduled_for=None, progress=None)
    job.run_id = run_id
    if not lease.acquire(database, connection_id, job.holder,
                         dt.timedelta(seconds=settings.lease_seconds)):
        raise LeaseBusy(f"connection {connection_id} is being synced; confirm again later")
    try:
        with database.session_scope() as session:
            connection = session.get(Connection, connection_id)
            assert connection is not None
            job._load_programmes(session, connection.programmes)
            if snapshot:
                job._restore_staged(session)
        job.counts = dict.fromkeys(job.counts, 0) | {
            "read": counts.get("read", 0), "quarantined": counts.get("quarantined", 0),
            "unchanged": 0}
        if snapshot:
            job.counts["unchanged"] = sum(len(p.seen_all) for p in job.programmes.values())
            with gcpause.paused():  # see `_collect_young`
                job._switch_snapshot(confirmed=True)
        else:
            now = utcnow()
            with database.session_scope(write=True) as session:
                staged = job._staged(session)
                for item in staged:
                    for entry in item["upserts"]:
                        code, data = _staged_entry(entry)
                        job.programmes[code].pending[data.stable_key] = data
                    for entry in item["deletions"]:
                        job.programmes[entry["programme"]].deletions.add(entry["stable_key"])
                for prog in job.programmes.values():
                    the_plan = apply.plan(session, prog.index, prog.pending.values(), now.date())
                    the_plan.removals = prog.removal_ids()
                    job._count_plan(the_plan)
                    apply.write(session, prog.index, the_plan, now=now,
                                source=job._source(), run_id=run_id)
                session.execute(delete(StagedBatch).where(StagedBatch.run_id == run_id))
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
    with database.session_scope(write=True) as session:
        run = session.get(SyncRun, run_id)
        if run is None:
            raise NotFound(f"no sync run {run_id}")
        if run.status != "needs_confirmation":
            raise InvalidInput(f"run {run_id} is {run.status}, not waiting for confirmation",
                               fields={"run": run.status})
        session.execute(delete(StagedBatch).where(StagedBatch.run_id == run_id))
        run.status = "discarded"
        audit_hooks.sync_outcome(session, run_id, "discarded")
        session.flush()
        session.expunge(run)
        return run
