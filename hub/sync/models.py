"""Connections, sync runs, leases, staged snapshots and quarantined records."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    cast,
    type_coerce,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from hub.db import Base, UTCDateTime, utcnow
from hub.jsonio import pack as _packed
from hub.jsonio import unpack as _unpacked
from hub.registry.models import Administration

RUN_STATUSES = ("running", "succeeded", "failed", "needs_confirmation", "discarded")
TRIGGERS = ("schedule", "manual", "api", "notify")


class Connection(Base):
    """A node connection: which connector reads which programme(s) for an administration.

    Non-secret configuration is kept as JSON; the secret fields (those the connector's
    schema marks secret) are encrypted at rest in `secrets_encrypted`.
    """

    __tablename__ = "connection"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    administration_id: Mapped[int] = mapped_column(ForeignKey("administration.id"))
    connector_type: Mapped[str] = mapped_column(String(64))
    programmes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secrets_encrypted: Mapped[str | None] = mapped_column(Text)
    # "interval:1h", "interval:30s", "cron:0 */6 * * *"
    schedule: Mapped[str] = mapped_column(String(120))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Where the connector resumes (its read() state after the last applied batch).
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_failure_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    staleness_seconds: Mapped[int] = mapped_column(Integer, default=36 * 3600)
    # Guards: shares of a programme's operators above which a run is held.
    max_removal_share: Mapped[float] = mapped_column(default=0.10)
    max_change_share: Mapped[float] = mapped_column(default=0.10)
    # A node asked for an immediate sync (coalesced while a run is going).
    notify_requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    administration: Mapped[Administration] = relationship()


class SyncRun(Base):
    """One run of a connection. `scheduled_for` is the schedule slot it claims: unique per
    connection, so two schedulers never run the same slot twice."""

    __tablename__ = "sync_run"
    __table_args__ = (
        UniqueConstraint("connection_id", "scheduled_for"),
        Index("ix_sync_run_connection_started", "connection_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24), default="running")
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    scheduled_for: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # read, created, updated, unchanged, removed, quarantined, status_changes
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The connector state reached by this run's staged batches (snapshot resume).
    staged_state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    held_reason: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    snapshot: Mapped[bool] = mapped_column(Boolean, default=False)

    connection: Mapped[Connection] = relationship()


class SyncLease(Base):
    """Who may sync a connection now. Renewed while the run lives; expires if it dies."""

    __tablename__ = "sync_lease"

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("connection.id", ondelete="CASCADE"), primary_key=True
    )
    holder: Mapped[str] = mapped_column(String(120))
    run_id: Mapped[int | None] = mapped_column(Integer)
    acquired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


def _packed_once(value: Any) -> bytes:
    """`value` packed, unless it is already (bytes: a batch packed where it was sorted)."""
    return value if isinstance(value, bytes) else _packed(value)


class PackedJSON(TypeDecorator[Any]):
    """A JSON column for staged batches, encoded and decoded with orjson.

    The column is plain JSON in the database (the same schema, readable by any JSON
    reader). Unlike the engine's JSON columns (`jsonio.dumps_text`, which refuses dates as
    `json` does), it also takes dates and aware timestamps, written as their `isoformat()`:
    a staged record keeps its dates as objects and reads them back in ISO form. Values are
    otherwise what orjson encodes as `json` would read them back: str-keyed dicts, lists,
    tuples, str, int, bool, None; what orjson refuses (a lone surrogate in a string, a very
    large integer) goes through `json` instead. Bytes are taken as JSON already packed
    (`jsonio.pack`) and stored as they are.
    """

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            from psycopg.types.json import Json

            return lambda value: Json(value, dumps=_packed_once)
        return lambda value: _packed_once(value).decode()

    def column_expression(self, colexpr: ColumnElement[Any]) -> ColumnElement[Any]:
        # Read the stored text (PostgreSQL's driver would otherwise parse it with `json`).
        return type_coerce(cast(colexpr, Text), self)

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        return lambda value: None if value is None else _unpacked(value)


class StagedBatch(Base):
    """Part of a snapshot run waiting for the switch: the records to apply and the stable
    keys seen unchanged, one row per connector batch."""

    __tablename__ = "sync_staged_batch"
    __table_args__ = (UniqueConstraint("run_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_run.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    # {programme code: [stable keys seen unchanged]}
    seen: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # [[programme, stable key, [values in RECORD_COLUMNS order], [identifiers]]] or, for
    # records with other values, {"programme": code, "stable_key": ..., "values": {...},
    # "identifiers": [...]}
    upserts: Mapped[list[Any]] = mapped_column(PackedJSON, default=list)
    # [{"programme": code, "stable_key": ...}] tombstones
    deletions: Mapped[list[Any]] = mapped_column(JSON, default=list)


class QuarantinedRecord(Base):
    """A record the pipeline refused, with every reason; its operator keeps its last good
    state. Reviewable, replayable after a fix, dismissable."""

    __tablename__ = "quarantined_record"
    __table_args__ = (Index("ix_quarantined_record_status", "connection_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id", ondelete="CASCADE"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_run.id", ondelete="SET NULL"))
    programme: Mapped[str | None] = mapped_column(String(32))
    stable_key: Mapped[str | None] = mapped_column(String(64))
    position: Mapped[str | None] = mapped_column(String(120))
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    # [{"field": ..., "reason": ...}]
    reasons: Mapped[list[Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open|replayed|dismissed
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    resolved_by: Mapped[str | None] = mapped_column(String(120))
    resolution_note: Mapped[str | None] = mapped_column(Text)
