"""Mutual-recognition arrangements: parties, per-direction scope and dates, status history.

Activation belongs to (arrangement, recognising programme, recognised programme): under
EU-US, CBP recognised EU AEOs from July 2012 and the EU recognised C-TPAT members from
31 January 2013. An arrangement's status (in force, suspended, terminated) has a dated
history; `status_on(day)` reads it, and `ArrangementDirection.active_on(day)` says whether a
direction recognises on a day, both by the one rulebook (`hub.arrangements.rulebook`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub import clock
from hub.arrangements import rulebook
from hub.db import Base, UTCDateTime
from hub.registry.models import Programme


class Arrangement(Base):
    __tablename__ = "arrangement"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(16))  # bilateral | plurilateral
    signed_on: Mapped[dt.date | None] = mapped_column(Date)
    in_force_on: Mapped[dt.date | None] = mapped_column(Date)
    # The fields of an operator the arrangement shares with partners.
    data_fields: Mapped[list[Any]] = mapped_column(JSON, default=list)
    benefits: Mapped[list[Any]] = mapped_column(JSON, default=list)
    source: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    parties: Mapped[list[ArrangementParty]] = relationship(
        back_populates="arrangement", cascade="all, delete-orphan"
    )
    directions: Mapped[list[ArrangementDirection]] = relationship(
        back_populates="arrangement", cascade="all, delete-orphan"
    )
    status_changes: Mapped[list[ArrangementStatusChange]] = relationship(
        back_populates="arrangement",
        cascade="all, delete-orphan",
        order_by="(ArrangementStatusChange.effective_date, ArrangementStatusChange.id)",
    )

    @property
    def statuses(self) -> rulebook.StatusHistory:
        """The status history in effect order (`hub.arrangements.rulebook`)."""
        return rulebook.order_steps(self.status_changes)

    def status_on(self, day: dt.date) -> str | None:
        """The arrangement's status on `day` (None before its first recorded status)."""
        return rulebook.arrangement_status_on(self, day)


class ArrangementParty(Base):
    __tablename__ = "arrangement_party"
    __table_args__ = (UniqueConstraint("arrangement_id", "programme_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    arrangement_id: Mapped[int] = mapped_column(ForeignKey("arrangement.id", ondelete="CASCADE"))
    programme_id: Mapped[int] = mapped_column(ForeignKey("programme.id"))
    # Date this party joined (plurilateral arrangements admit members one by one).
    joined_on: Mapped[dt.date | None] = mapped_column(Date)

    arrangement: Mapped[Arrangement] = relationship(back_populates="parties")
    programme: Mapped[Programme] = relationship()


class ArrangementDirection(Base):
    """One direction: `recognising` programme grants benefits to `recognised`'s AEOs."""

    __tablename__ = "arrangement_direction"
    __table_args__ = (
        UniqueConstraint("arrangement_id", "recognising_id", "recognised_id"),
        Index("ix_arrangement_direction_pair", "recognising_id", "recognised_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    arrangement_id: Mapped[int] = mapped_column(ForeignKey("arrangement.id", ondelete="CASCADE"))
    recognising_id: Mapped[int] = mapped_column(ForeignKey("programme.id"))
    recognised_id: Mapped[int] = mapped_column(ForeignKey("programme.id"))
    # Categories of the recognised programme that this direction recognises.
    categories: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Flows as seen by the recognising administration: import, export.
    flows: Mapped[list[Any]] = mapped_column(JSON, default=list)
    active_from: Mapped[dt.date | None] = mapped_column(Date)
    active_until: Mapped[dt.date | None] = mapped_column(Date)
    # Tiers of the recognised programme this direction is limited to (empty: any).
    tiers: Mapped[list[Any]] = mapped_column(JSON, default=list)
    note: Mapped[str | None] = mapped_column(Text)
    # Reference extras: unconfirmed categories, source, whether derived from members.
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    arrangement: Mapped[Arrangement] = relationship(back_populates="directions")
    recognising: Mapped[Programme] = relationship(foreign_keys=[recognising_id])
    recognised: Mapped[Programme] = relationship(foreign_keys=[recognised_id])

    def active_on(self, day: dt.date) -> bool:
        """Whether this direction recognises (and shares) on `day`."""
        return rulebook.direction_active(self, self.arrangement, day)


class ArrangementStatusChange(Base):
    """A dated status of an arrangement; appended, never rewritten."""

    __tablename__ = "arrangement_status_change"
    __table_args__ = (
        UniqueConstraint("arrangement_id", "status", "effective_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    arrangement_id: Mapped[int] = mapped_column(ForeignKey("arrangement.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    effective_date: Mapped[dt.date] = mapped_column(Date)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    # "reference" (from arrangements.yaml, corrected by re-loading) or "manual" (the CLI).
    origin: Mapped[str] = mapped_column(String(16), default="reference")
    note: Mapped[str | None] = mapped_column(Text)

    arrangement: Mapped[Arrangement] = relationship(back_populates="status_changes")


class ReferenceChange(Base):
    """A change made to reference data (a re-load that edited a date, a suspension)."""

    __tablename__ = "reference_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(32))  # administration | programme | arrangement
    code: Mapped[str] = mapped_column(String(40))
    field: Mapped[str] = mapped_column(String(64))
    old: Mapped[Any] = mapped_column(JSON, nullable=True)
    new: Mapped[Any] = mapped_column(JSON, nullable=True)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    actor: Mapped[str | None] = mapped_column(String(120))
