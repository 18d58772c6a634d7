"""A simulated registry: day-0 records regenerated on demand plus an overlay of changes.

Record ``i`` of the day-0 registry has change sequence ``i + 1``; every later change (churn
or on-demand) gives the touched record the next sequence number, so the feed ordered by
sequence is what a node's incremental protocol serves and a cursor is just a sequence.
Memory grows with the number of changes, never with the registry size.
"""

from __future__ import annotations

import bisect
import copy
import datetime as dt
from collections.abc import Iterator
from typing import Any

from hub.sim import churn
from hub.sim.generator import DEFAULT_OVERLAP, SIM_EPOCH, ProgrammeGenerator, Record


class Registry:
    """One programme's registry as its administration's node holds it."""

    def __init__(self, programme: str, size: int, seed: int,
                 overlap: float = DEFAULT_OVERLAP) -> None:
        self.generator = ProgrammeGenerator(programme, seed, overlap)
        self.programme = programme
        self.size = size
        self.seed = seed
        self.overlap = overlap
        self.day = 0
        self.count = size  # indices allocated so far (day-0 records plus new authorisations)
        self.version = 0  # bumps with every change
        self.log: list[churn.Change] = []
        self._overlay: dict[int, Record] = {}  # changed or new records, current state
        self._deletions: dict[int, dict[str, Any]] = {}  # tombstoned indices
        self._seq_of: dict[int, int] = {}  # index -> sequence, changed indices only
        self._index_at: dict[int, int] = {}  # sequence -> index, latest change only
        self._changed_seqs: list[int] = []  # ascending; stale entries skipped via _index_at
        self._next_seq = size + 1
        self._key_index: dict[str, int] | None = None
        self._clock: dt.datetime | None = None
        self._flags = bytearray(size)  # churn's summary of day-0 records, 0 = not yet known

    # --- reading -------------------------------------------------------------------------

    @property
    def today(self) -> dt.date:
        """The simulated date."""
        return SIM_EPOCH + dt.timedelta(days=self.day)

    @property
    def max_seq(self) -> int:
        """The highest change sequence handed out."""
        return self._next_seq - 1

    @property
    def published_count(self) -> int:
        """Records on the published list (tombstoned ones excluded)."""
        return self.count - len(self._deletions)

    def record(self, index: int) -> Record | None:
        """The current record at `index` (None once removed); callers must not mutate it."""
        if index in self._deletions:
            return None
        found = self._overlay.get(index)
        if found is not None:
            return found
        if 0 <= index < self.size:
            return self.generator.record(index)
        raise IndexError(index)

    def flags(self, index: int) -> int:
        """A one-byte summary of the current record (see :func:`hub.sim.churn.summarise`)."""
        if index in self._deletions:
            return churn.REMOVED
        found = self._overlay.get(index)
        if found is not None:
            return churn.summarise(found)
        value = self._flags[index]
        if not value:
            value = self._flags[index] = churn.summarise(self.generator.record(index))
        return value

    def deletion(self, index: int) -> dict[str, Any] | None:
        """The tombstone of `index`, if it was removed from the published list."""
        return self._deletions.get(index)

    def seq_of(self, index: int) -> int:
        """The change sequence of `index`."""
        return self._seq_of.get(index, index + 1)

    def entries(self, after_seq: int = 0) -> Iterator[tuple[int, int]]:
        """(sequence, index) of every record or tombstone changed after `after_seq`, in order."""
        if after_seq < self.size:
            changed = self._seq_of
            for index in range(max(after_seq, 0), self.size):
                if index not in changed:
                    yield index + 1, index
        start = bisect.bisect_right(self._changed_seqs, after_seq)
        for seq in self._changed_seqs[start:]:
            current = self._index_at.get(seq)
            if current is not None:
                yield seq, current

    def iter_records(self) -> Iterator[Record]:
        """The published records in sequence order."""
        for _, index in self.entries():
            record = self.record(index)
            if record is not None:
                yield record

    def iter_ground_truth(self) -> Iterator[tuple[str, str]]:
        """(trader_id, company_id) of every published record, in sequence order."""
        for _, index in self.entries():
            record = self.record(index)
            if record is not None:
                yield record["trader_id"], self.generator.company_id(index)

    def index_of(self, trader_id: str) -> int:
        """The index of the operator with `trader_id` (or authorisation number); KeyError."""
        if self._key_index is None:
            keys: dict[str, int] = {}
            for index in range(self.count):
                record = self.record(index)
                source = record if record is not None else self._deletions[index]
                keys[source["trader_id"]] = index
                if source.get("authorisation_number"):
                    keys.setdefault(source["authorisation_number"], index)
            self._key_index = keys
        return self._key_index[trader_id]

    def lookup(self, trader_id: str) -> Record | None:
        """The current record of `trader_id` (None when removed); KeyError when unknown."""
        return self.record(self.index_of(trader_id))

    def company_of(self, trader_id: str) -> str:
        """Ground truth: the company behind `trader_id` (never part of the record)."""
        return self.generator.company_id(self.index_of(trader_id))

    def trader_ids(self, limit: int | None = None) -> list[str]:
        """Trader ids of published records in sequence order (first `limit`)."""
        out: list[str] = []
        for record in self.iter_records():
            out.append(record["trader_id"])
            if limit is not None and len(out) >= limit:
                break
        return out

    # --- changing ------------------------------------------------------------------------

    def editable(self, index: int) -> Record:
        """A private copy of the current record of `index` for a change to modify."""
        record = self.record(index)
        if record is None:
            raise churn.ChangeError(f"operator at index {index} was removed from the list")
        return copy.deepcopy(record)

    def next_timestamp(self) -> str:
        """A change time on the simulated day, strictly after the previous change."""
        start = dt.datetime.combine(self.today, dt.time(7), tzinfo=dt.UTC)
        if self._clock is None or self._clock < start:
            self._clock = start
        else:
            self._clock += dt.timedelta(seconds=7)
        return self._clock.strftime("%Y-%m-%dT%H:%M:%SZ")

    def commit(self, index: int, record: Record | None, kind: str,
               component: str | None = None, detail: str = "") -> churn.Change:
        """Store a change: `record` (None = tombstone) becomes current at the next sequence."""
        seq = self._next_seq
        self._next_seq += 1
        changed_at = self.next_timestamp()
        old = self._seq_of.get(index)
        if old is not None:
            self._index_at.pop(old, None)
        self._seq_of[index] = seq
        self._index_at[seq] = index
        self._changed_seqs.append(seq)
        if record is None:
            previous = self.record(index)
            assert previous is not None
            self._deletions[index] = {
                "trader_id_scheme": previous["trader_id_scheme"],
                "trader_id": previous["trader_id"],
                "authorisation_number": previous["authorisation_number"],
                "deleted_at": changed_at,
            }
            self._overlay.pop(index, None)
            trader_id = previous["trader_id"]
        else:
            record["changed_at"] = changed_at
            self._overlay[index] = record
            trader_id = record["trader_id"]
            if self._key_index is not None:
                self._key_index.setdefault(trader_id, index)
        self.version += 1
        change = churn.Change(seq=seq, day=self.day, programme=self.programme,
                              trader_id=trader_id, kind=kind, component=component,
                              detail=detail, changed_at=changed_at)
        self.log.append(change)
        return change

    def allocate(self) -> int:
        """A fresh index for a new authorisation."""
        index = self.count
        self.count += 1
        return index

    def advance(self, days: int = 1) -> list[churn.Change]:
        """Let `days` simulated days pass, with their deterministic churn."""
        changes: list[churn.Change] = []
        for _ in range(days):
            self.day += 1
            changes.extend(churn.churn_day(self))
        return changes

    def apply(self, kind: str, key: str | None = None,
              component: str | None = None) -> churn.Change:
        """Make one change now (`kind` from :data:`hub.sim.churn.CHANGE_KINDS`) to `key`."""
        return churn.apply_change(self, kind, key, component)


def iter_records(programme: str, size: int, seed: int, day: int = 0,
                 overlap: float = DEFAULT_OVERLAP) -> Iterator[Record]:
    """Yield the published records of a registry, in change-sequence order, lazily.

    With `day` > 0 the registry first goes through `day` days of churn (memory grows only
    with the number of changes, not with `size`).
    """
    if day == 0:
        generator = ProgrammeGenerator(programme, seed, overlap)
        for index in range(size):
            yield generator.record(index)
        return
    yield from generate_registry(programme, size, seed, day, overlap).iter_records()


def iter_ground_truth(programme: str, size: int, seed: int, day: int = 0,
                      overlap: float = DEFAULT_OVERLAP) -> Iterator[tuple[str, str]]:
    """Yield (trader_id, company_id) for every published record (never in the record)."""
    registry = generate_registry(programme, size, seed, day, overlap)
    yield from registry.iter_ground_truth()


def generate_registry(programme: str, size: int, seed: int, day: int = 0,
                      overlap: float = DEFAULT_OVERLAP) -> Registry:
    """A registry of `size` operators of `programme`, after `day` days of churn."""
    registry = Registry(programme, size, seed, overlap=overlap)
    if day:
        registry.advance(day)
    return registry
