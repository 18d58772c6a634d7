"""Connections, sync runs, leases, staged records and quarantined records."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    false,
    or_,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub import clock
from hub.db import Base, UTCDateTime
from hub.registry.models import Administration

#: The longest programme code a quarantine entry keeps (a record naming a longer one
#: names no programme: the entry keeps it in its record only).
PROGRAMME_CODE = 32

#: running; then succeeded, failed, needs_confirmation (held); a held run ends
#: confirmed (succeeded), discarded or superseded (a newer run started); a run that died
#: and will not resume is abandoned.
RUN_STATUSES = ("running", "succeeded", "failed", "needs_confirmation", "discarded",
                "superseded", "abandoned")
TRIGGERS = ("schedule", "manual", "api", "notify", "replay")


class Connection(Base):
    """A node connection: which connector reads which programme(s) for an administration.

    Non-secret configuration is kept as JSON; the secret fields (those the connector's
    schema marks secret) are encrypted at rest in `secrets_encrypted`.
    """

    __tablename__ = "connection"
    # A name is unique within its administration: another administration's names are
    # not this one's to learn (a global name would answer "taken" to anyone).
    __table_args__ = (UniqueConstraint("administration_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    administration_id: Mapped[int] = mapped_column(ForeignKey("administration.id"))
    connector_type: Mapped[str] = mapped_column(String(64))
    programmes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secrets_encrypted: Mapped[str | None] = mapped_column(Text)
    # "interval:1h", "interval:30s", "cron:0 */6 * * *"
    schedule: Mapped[str] = mapped_column(String(120))
    # When an incremental source is read whole, as a snapshot that removes what it no
    # longer lists (same syntax as `schedule`; None: never). The scheduler runs the
    # first scheduled sync at or after each of its slots as that snapshot.
    snapshot_schedule: Mapped[str | None] = mapped_column(String(120))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Where the connector resumes (its read() state after the last applied batch).
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_failure_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    staleness_seconds: Mapped[int] = mapped_column(Integer, default=36 * 3600)
    # Guards: shares of a programme's operators above which a run is held.
    max_removal_share: Mapped[float] = mapped_column(Float, default=0.10)
    max_change_share: Mapped[float] = mapped_column(Float, default=0.10)
    # A snapshot is held (an incremental run fails) when its quarantined records exceed
    # both this share of the records read and this number.
    max_quarantine_share: Mapped[float] = mapped_column(Float, default=0.10)
    max_quarantined: Mapped[int] = mapped_column(Integer, default=20)
    # ISO countries of the programme's operators this connection answers for (empty:
    # the whole programme). A snapshot removes only operators inside its scope; two
    # enabled connections may share a programme only with disjoint scopes.
    scope_countries: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # A node asked for an immediate sync (coalesced while a run is going).
    notify_requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)

    administration: Mapped[Administration] = relationship()


class SyncRun(Base):
    """One run of a connection. `scheduled_for` is the schedule slot it claims: unique per
    connection among the runs that keep their slot (`KEEPS_SLOT`), so two schedulers never
    run the same slot twice, and a slot whose run died or failed can be run again."""

    __tablename__ = "sync_run"
    __table_args__ = (Index("ix_sync_run_connection_started", "connection_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24), default="running")
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    scheduled_for: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # read, created, updated, unchanged, removed, quarantined, status_changes
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The connector state reached by this run's staged batches (snapshot resume).
    staged_state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The identity of the snapshot being read (`Discovery.snapshot_id`): a run resumes
    # only over the same feed.
    feed_id: Mapped[str | None] = mapped_column(String(200))
    held_reason: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    snapshot: Mapped[bool] = mapped_column(Boolean, default=False)
    # a failed run that a guard stopped (an incremental feed past its quarantine limits)
    stopped_by_guard: Mapped[bool] = mapped_column(Boolean, default=False,
                                                   server_default=false())

    connection: Mapped[Connection] = relationship()


#: The runs that keep the schedule slot they claimed: all but an abandoned run and one
#: that failed for its source (down, unreadable), whose slot is tried again after the
#: backoff. A run that a guard stopped keeps it: trying again would wear the guard down,
#: one more page of a bad feed each time.
KEEPS_SLOT = and_(SyncRun.status != "abandoned",
                  or_(SyncRun.status != "failed", SyncRun.stopped_by_guard.is_(True)))
Index("uq_sync_run_slot", SyncRun.connection_id, SyncRun.scheduled_for, unique=True,
      sqlite_where=KEEPS_SLOT, postgresql_where=KEEPS_SLOT)


class SyncLease(Base):
    """Who may sync a connection now. Renewed while the run lives; expires if it dies."""

    __tablename__ = "sync_lease"

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("connection.id", ondelete="CASCADE"), primary_key=True
    )
    holder: Mapped[str] = mapped_column(String(120))
    run_id: Mapped[int | None] = mapped_column(Integer)
    acquired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class StagedRecord(Base):
    """One record key a run met, waiting for the switch (snapshot) or the page's merge
    (incremental). `action` says what the merge does with it:

    - `create`, `update`: the validated values (this row's record columns), with their
      history events (`StagedEvent`) and identifiers (`StagedIdentifier`);
    - `same`: the operator is unchanged (its fingerprint, or its values); a new
      fingerprint, when given, replaces the stored one;
    - `keep`: a rejected or repeated record of this operator: it keeps its last good state;
    - `remove`: a tombstone of an incremental feed.

    A snapshot removes the operators of its connection's scope that have no row here.
    """

    __tablename__ = "sync_staged"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("sync_run.id", ondelete="CASCADE"), primary_key=True)
    programme_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stable_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    action: Mapped[str] = mapped_column(String(8))
    # the connector batch it was staged with (1, 2, ...)
    seq: Mapped[int] = mapped_column(Integer)
    position: Mapped[str | None] = mapped_column(String(120))
    # (creations and updates only; None elsewhere)
    # an update that changes status or consent (the change guard counts them)
    status_change: Mapped[bool | None] = mapped_column(Boolean)
    # a creation, or an update whose identifiers differ from the stored ones
    identifiers_changed: Mapped[bool | None] = mapped_column(Boolean)
    # an update with history events (`updated_at` moves only then)
    has_events: Mapped[bool | None] = mapped_column(Boolean)
    # an update that empties a value the operator holds (the change guard counts them)
    clears_values: Mapped[bool | None] = mapped_column(Boolean)
    last_effective: Mapped[dt.date | None] = mapped_column(Date)
    # the operator's record columns (`hub.registry.service.RECORD_COLUMNS`)
    authorisation_number: Mapped[str | None] = mapped_column(String(64))
    trader_id_scheme: Mapped[str | None] = mapped_column(String(32))
    trader_id: Mapped[str | None] = mapped_column(String(64))
    legal_name: Mapped[str | None] = mapped_column(String(300))
    street: Mapped[str | None] = mapped_column(String(300))
    city: Mapped[str | None] = mapped_column(String(120))
    postcode: Mapped[str | None] = mapped_column(String(32))
    region: Mapped[str | None] = mapped_column(String(64))
    country: Mapped[str | None] = mapped_column(String(2))
    status: Mapped[str | None] = mapped_column(String(16))
    status_effective: Mapped[dt.date | None] = mapped_column(Date)
    categories: Mapped[list[Any] | None] = mapped_column(JSON)
    issuing_authority: Mapped[str | None] = mapped_column(String(200))
    authorised_on: Mapped[dt.date | None] = mapped_column(Date)
    valid_from: Mapped[dt.date | None] = mapped_column(Date)
    valid_until: Mapped[dt.date | None] = mapped_column(Date)
    consent_share: Mapped[bool | None] = mapped_column(Boolean)
    consent_publish: Mapped[bool | None] = mapped_column(Boolean)
    source_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    warnings: Mapped[list[Any] | None] = mapped_column(JSON)


class StagedEvent(Base):
    """A history event of a staged record, worked out when the record was classified
    (`hub.registry.history`); written with the operator's id at the merge."""

    __tablename__ = "sync_staged_event"
    # by run only: the merge joins on the operator's own (programme, key) index, and
    # rows of one run come back in insertion order (`id`) without a sort
    __table_args__ = (Index("ix_sync_staged_event_run", "run_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_run.id", ondelete="CASCADE"))
    programme_id: Mapped[int] = mapped_column(Integer)
    stable_key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(24))
    effective_date: Mapped[dt.date] = mapped_column(Date)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    previous: Mapped[dict[str, Any]] = mapped_column(JSON)


class StagedIdentifier(Base):
    """An identifier of a staged creation, or of an update whose identifiers changed."""

    __tablename__ = "sync_staged_identifier"
    __table_args__ = (Index("ix_sync_staged_identifier_run", "run_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_run.id", ondelete="CASCADE"))
    programme_id: Mapped[int] = mapped_column(Integer)
    stable_key: Mapped[str] = mapped_column(String(64))
    scheme: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(String(8))
    linked: Mapped[bool] = mapped_column(Boolean)


class QuarantinedRecord(Base):
    """A record the pipeline refused, with every reason (the real problem first); its
    operator keeps its last good state.

    One entry per (connection, record key, reason code): the record key is the stable key
    when it could be read, else a digest of the raw record. A repeat in a later run bumps
    `seen_count` and `last_seen_at`; an open entry resolves itself when its key later
    syncs cleanly; a dismissed entry stays dismissed until the record changes
    (`record_digest`)."""

    __tablename__ = "quarantined_record"
    __table_args__ = (
        Index("ix_quarantined_record_status", "connection_id", "status"),
        UniqueConstraint("connection_id", "record_key", "reason_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id", ondelete="CASCADE"))
    # the run that last met it
    run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_run.id", ondelete="SET NULL"))
    programme: Mapped[str | None] = mapped_column(String(PROGRAMME_CODE))
    stable_key: Mapped[str | None] = mapped_column(String(64))
    record_key: Mapped[str] = mapped_column(String(80))
    reason_code: Mapped[str] = mapped_column(String(32))
    # sha-256 of the raw record as last met
    record_digest: Mapped[str] = mapped_column(String(64))
    # the operator it was tied to (by stable key, authorisation number or identifier)
    operator_id: Mapped[int | None] = mapped_column(Integer)
    position: Mapped[str | None] = mapped_column(String(120))
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    # [{"code": ..., "field": ..., "reason": ...}]
    reasons: Mapped[list[Any]] = mapped_column(JSON)
    # open | resolved | replayed | dismissed
    status: Mapped[str] = mapped_column(String(16), default="open")
    seen_count: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    resolved_by: Mapped[str | None] = mapped_column(String(120))
    resolution_note: Mapped[str | None] = mapped_column(Text)
