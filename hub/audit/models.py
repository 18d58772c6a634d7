"""The audit log's tables: entries, the administrations each entry concerns, the chain head.

`AuditEntry` rows are only ever inserted. Each carries the hash of the entry before it
(`prev_hash`) and its own `hash`, so that changing or deleting a stored entry breaks the
chain where it happened. `AuditEntryAdministration` indexes entries by the administration
codes they concern (for `aeohub audit export`); the codes are part of the hashed content.
`AuditHead` is a single row that appenders lock to take turns (it also records the
latest seq and hash, which lets `verify` notice entries deleted from the end).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.db import Base, UTCDateTime

# 64-bit keys on PostgreSQL (an audited read per request adds up); SQLite's INTEGER
# PRIMARY KEY is already 64-bit and must stay INTEGER to autoincrement.
BigId = BigInteger().with_variant(Integer(), "sqlite")
HEAD_ID = 1


class AuditEntry(Base):
    """One audited event, linked to the entry before it by `prev_hash`."""

    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_recorded_at", "recorded_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Position in the chain: 1, 2, 3, ... without gaps.
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # "client:<id>", "user:<name>", "cli", "system"
    actor: Mapped[str] = mapped_column(String(200))
    # "token.issued", "registry.read", "sync.succeeded", "connection.added", ...
    action: Mapped[str] = mapped_column(String(64))
    # What the action was about, e.g. "connection:3", "arrangement:EU-US", "run:17".
    subject: Mapped[str | None] = mapped_column(String(300))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    administration_links: Mapped[list[AuditEntryAdministration]] = relationship(
        back_populates="entry", cascade="all, delete-orphan", lazy="selectin",
        order_by="AuditEntryAdministration.administration",
    )

    @property
    def administrations(self) -> list[str]:
        return sorted(link.administration for link in self.administration_links)


class AuditEntryAdministration(Base):
    """An administration an entry concerns (its data was read, its client acted, ...)."""

    __tablename__ = "audit_entry_administration"
    __table_args__ = (
        Index("ix_audit_entry_administration_code", "administration", "entry_id"),
    )

    entry_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("audit_entry.id", ondelete="CASCADE"), primary_key=True
    )
    # A code, not a foreign key: the log outlives the administration rows it names.
    administration: Mapped[str] = mapped_column(String(32), primary_key=True)

    entry: Mapped[AuditEntry] = relationship(back_populates="administration_links")


class AuditHead(Base):
    """The chain head: one row (id 1), locked by every append so appends take turns."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
