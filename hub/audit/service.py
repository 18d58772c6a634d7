"""Append to the audit chain, verify it, export an administration's entries, read the head.

Appends happen in the caller's transaction, so an entry exists exactly when the change it
records committed. They take turns on the chain-head row: the first statement of an append
is an UPDATE of that row, which takes PostgreSQL's row lock (held to commit; a concurrent
appender waits, then reads the head the first one left) and SQLite's database write lock.
Call `record` late in a transaction (after the audited change), keep the transaction
short afterwards, and the lock is held only for the commit.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub import clock
from hub.audit import chain
from hub.audit.models import HEAD_ID, AuditEntry, AuditEntryAdministration, AuditHead

VERIFY_BATCH = 1000
_ENTRIES: Table = AuditEntry.__table__  # type: ignore[assignment]
_LINKS: Table = AuditEntryAdministration.__table__  # type: ignore[assignment]
_HEAD: Table = AuditHead.__table__  # type: ignore[assignment]
ACTOR_MAX = 200
SUBJECT_MAX = 300


@dataclass(frozen=True)
class NewEntry:
    """An entry to append with `record_many` (the arguments of `record`)."""

    action: str
    actor: str
    subject: str | None = None
    administrations: Iterable[str] = ()
    details: Mapping[str, Any] | None = None


def record(session: Session, action: str, *, actor: str, subject: str | None = None,
           administrations: Iterable[str] = (), details: Mapping[str, Any] | None = None
           ) -> AuditEntry:
    """Append one entry to the chain in `session`'s transaction and return it (flushed)."""
    action, actor, subject, codes, clean = _stored(
        NewEntry(action, actor, subject, administrations, details))
    seq, prev_hash = _take_turn(session)
    recorded_at = clock.now()
    digest = chain.entry_hash(seq=seq, recorded_at=recorded_at, actor=actor, action=action,
                              administrations=codes, subject=subject, details=clean,
                              prev_hash=prev_hash)
    entry = AuditEntry(seq=seq, recorded_at=recorded_at, actor=actor, action=action,
                       subject=subject, details=clean, prev_hash=prev_hash, hash=digest,
                       administration_links=[AuditEntryAdministration(administration=c)
                                             for c in codes])
    session.add(entry)
    session.execute(update(AuditHead).where(AuditHead.id == HEAD_ID)
                    .values(hash=digest, recorded_at=recorded_at))
    session.flush()
    return entry


def record_many(session: Session, entries: Sequence[NewEntry]) -> int:
    """Append `entries`, in order, in `session`'s transaction; returns how many.

    The same chain as that many `record` calls, written set-based: one turn on the head
    for all of them, one multi-row insert of the entries and one of their
    administrations (what the API's buffered `registry.read` entries need).
    """
    if not entries:
        return 0
    prepared = [_stored(item) for item in entries]
    last_seq, prev_hash = _take_turn(session, len(prepared))
    seq = last_seq - len(prepared)
    recorded_at = clock.now()
    rows: list[dict[str, Any]] = []
    codes_by_seq: dict[int, list[str]] = {}
    for action, actor, subject, codes, details in prepared:
        seq += 1
        digest = chain.entry_hash(seq=seq, recorded_at=recorded_at, actor=actor,
                                  action=action, administrations=codes, subject=subject,
                                  details=details, prev_hash=prev_hash)
        rows.append({"seq": seq, "recorded_at": recorded_at, "actor": actor,
                     "action": action, "subject": subject, "details": details,
                     "prev_hash": prev_hash, "hash": digest})
        codes_by_seq[seq] = codes
        prev_hash = digest
    connection = session.connection()  # Core on the session's connection: no ORM work
    connection.execute(insert(_ENTRIES), rows)
    ids = connection.execute(select(AuditEntry.seq, AuditEntry.id)
                             .where(AuditEntry.seq.between(rows[0]["seq"], seq)))
    links = [{"entry_id": entry_id, "administration": code}
             for entry_seq, entry_id in ids for code in codes_by_seq[entry_seq]]
    if links:
        connection.execute(insert(_LINKS), links)
    connection.execute(update(_HEAD).where(_HEAD.c.id == HEAD_ID)
                       .values(hash=prev_hash, recorded_at=recorded_at))
    return len(rows)


def _stored(item: NewEntry) -> tuple[str, str, str | None, list[str], dict[str, Any]]:
    """An entry's fields as stored and hashed: actor and subject cut to their columns,
    administration codes sorted without duplicates, details normalised."""
    return (item.action, item.actor[:ACTOR_MAX],
            item.subject[:SUBJECT_MAX] if item.subject is not None else None,
            sorted({str(code) for code in item.administrations if code}),
            chain.normalise_details(item.details))


def _take_turn(session: Session, count: int = 1) -> tuple[int, str]:
    """Lock the head, advance it by `count`, and return (the new seq, the hash of the
    entry before the first one taken)."""
    for _attempt in range(3):
        # Writing first: the row lock (PostgreSQL) or write lock (SQLite) comes before any
        # read of the head, so two appenders can never read the same head.
        row = session.connection().execute(
            update(_HEAD).where(_HEAD.c.id == HEAD_ID).values(seq=_HEAD.c.seq + count)
            .returning(_HEAD.c.seq, _HEAD.c.hash)).first()
        if row is not None:
            return int(row.seq), str(row.hash)
        _create_head(session)
    raise RuntimeError("the audit chain head could not be created")


def _create_head(session: Session) -> None:
    """Create the head row from the last entry (or the genesis) if nobody else did."""
    last = session.execute(select(AuditEntry.seq, AuditEntry.hash, AuditEntry.recorded_at)
                           .order_by(AuditEntry.seq.desc()).limit(1)).first()
    values = ({"seq": last.seq, "hash": last.hash, "recorded_at": last.recorded_at}
              if last else {"seq": 0, "hash": chain.GENESIS_HASH, "recorded_at": None})
    try:
        with session.begin_nested():
            session.execute(insert(AuditHead).values(id=HEAD_ID, **values))
    except IntegrityError:
        pass  # a concurrent appender created it; its row is the one to lock


# -- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str
    recorded_at: dt.datetime | None

    @property
    def recorded_at_text(self) -> str | None:
        return chain.format_time(self.recorded_at) if self.recorded_at else None


def head(session: Session) -> Head:
    """The last committed entry (seq 0 and the genesis hash for an empty log)."""
    row = session.execute(select(AuditEntry.seq, AuditEntry.hash, AuditEntry.recorded_at)
                          .order_by(AuditEntry.seq.desc()).limit(1)).first()
    if row is None:
        return Head(0, chain.GENESIS_HASH, None)
    return Head(int(row.seq), str(row.hash), row.recorded_at)


def _links(session: Session, ids: Sequence[int]) -> dict[int, list[str]]:
    codes: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        for entry_id, code in session.execute(
                select(AuditEntryAdministration.entry_id,
                       AuditEntryAdministration.administration)
                .where(AuditEntryAdministration.entry_id.in_(ids))):
            codes[entry_id].append(code)
    return codes


def _rows(session: Session, query: Any) -> Iterator[dict[str, Any]]:
    """Entries of `query` (ordered by seq) as dicts, fetched in batches by seq."""
    after = 0
    while True:
        batch = session.execute(query.where(AuditEntry.seq > after)
                                .order_by(AuditEntry.seq).limit(VERIFY_BATCH)).all()
        if not batch:
            return
        links = _links(session, [r.id for r in batch])
        for r in batch:
            yield {"id": r.id, "seq": r.seq, "recorded_at": r.recorded_at, "actor": r.actor,
                   "action": r.action, "administrations": sorted(links[r.id]),
                   "subject": r.subject, "details": r.details, "prev_hash": r.prev_hash,
                   "hash": r.hash}
        after = batch[-1].seq


_COLUMNS = (AuditEntry.id, AuditEntry.seq, AuditEntry.recorded_at, AuditEntry.actor,
            AuditEntry.action, AuditEntry.subject, AuditEntry.details, AuditEntry.prev_hash,
            AuditEntry.hash)


def recompute(row: Mapping[str, Any]) -> str:
    """The hash an entry should have, from its stored fields."""
    return chain.entry_hash(seq=row["seq"], recorded_at=row["recorded_at"], actor=row["actor"],
                            action=row["action"], administrations=row["administrations"],
                            subject=row["subject"], details=row["details"] or {},
                            prev_hash=row["prev_hash"])


@dataclass(frozen=True)
class Verification:
    """The outcome of `verify`: how far the chain holds, and the first entry that does not."""

    checked: int
    head: Head
    broken_seq: int | None = None
    broken_id: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def verify(session: Session) -> Verification:
    """Recompute the whole chain; stop at the first entry that does not fit."""
    expected_seq, prev_hash = 1, chain.GENESIS_HASH
    checked = 0
    last: Head = Head(0, chain.GENESIS_HASH, None)
    for row in _rows(session, select(*_COLUMNS)):
        problem = None
        if row["seq"] != expected_seq:
            missing = (f"entry {expected_seq}" if row["seq"] == expected_seq + 1
                       else f"entries {expected_seq}-{row['seq'] - 1}")
            problem = f"{missing} missing before it (deleted?)"
        elif row["prev_hash"] != prev_hash:
            problem = ("its prev_hash does not match the hash of the entry before it "
                       "(that entry was changed or replaced)")
        elif recompute(row) != row["hash"]:
            problem = "its stored content does not match its hash (the entry was changed)"
        if problem:
            return Verification(checked, last, row["seq"], row["id"], problem)
        checked += 1
        expected_seq, prev_hash = row["seq"] + 1, row["hash"]
        last = Head(row["seq"], row["hash"], row["recorded_at"])
    stored = session.execute(select(AuditHead.seq, AuditHead.hash)
                             .where(AuditHead.id == HEAD_ID)).first()
    if stored is not None and (stored.seq, stored.hash) != (last.seq, last.hash):
        if stored.seq > last.seq:
            reason = (f"the chain head says seq {stored.seq} but the last entry is seq "
                      f"{last.seq}: entries after {last.seq} are missing (deleted?)")
        else:
            reason = (f"the chain head (seq {stored.seq}) does not match the last entry "
                      f"(seq {last.seq})")
        return Verification(checked, last, stored.seq, None, reason)
    return Verification(checked, last)


def export(session: Session, administration: str, *, since: dt.datetime | None = None,
           until: dt.datetime | None = None) -> Iterator[dict[str, Any]]:
    """Entries concerning `administration` recorded in [since, until), oldest first."""
    query = select(*_COLUMNS).where(_about(administration))
    if since is not None:
        query = query.where(AuditEntry.recorded_at >= since)
    if until is not None:
        query = query.where(AuditEntry.recorded_at < until)
    for row in _rows(session, query):
        yield as_json(row)


def administrations_named(session: Session) -> list[str]:
    """Every administration code that some entry concerns, sorted."""
    return list(session.scalars(select(AuditEntryAdministration.administration).distinct()
                                .order_by(AuditEntryAdministration.administration)))


def as_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """An entry in its exported form (the fields its hash covers, plus id and hash)."""
    return {"seq": row["seq"], "recorded_at": chain.format_time(row["recorded_at"]),
            "actor": row["actor"], "action": row["action"],
            "administrations": list(row["administrations"]), "subject": row["subject"],
            "details": row["details"] or {}, "prev_hash": row["prev_hash"],
            "hash": row["hash"]}


def to_ndjson_line(item: Mapping[str, Any]) -> str:
    return json.dumps(item, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _about(administration: str) -> Any:
    """The condition "the entry concerns `administration`"."""
    return AuditEntry.id.in_(
        select(AuditEntryAdministration.entry_id)
        .where(AuditEntryAdministration.administration == administration))


def count(session: Session, administration: str | None = None) -> int:
    """How many entries the log holds (those about `administration` when given)."""
    query = select(func.count()).select_from(AuditEntry)
    if administration is not None:
        query = query.where(_about(administration))
    return int(session.scalar(query) or 0)


def recent(session: Session, administration: str | None = None, limit: int = 50
           ) -> list[dict[str, Any]]:
    """The newest entries, newest first (those about `administration` when given)."""
    query = select(*_COLUMNS).order_by(AuditEntry.seq.desc()).limit(limit)
    if administration is not None:
        query = query.where(_about(administration))
    rows = session.execute(query).all()
    links = _links(session, [r.id for r in rows])
    return [as_json({**r._mapping, "administrations": sorted(links[r.id])}) for r in rows]
