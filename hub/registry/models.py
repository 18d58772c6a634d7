"""Registry models: who runs which programme, and each authorisation with its history."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub import clock
from hub.db import Base, UTCDateTime

#: Overall statuses of an authorisation. Consent is a flag, never a status.
STATUSES = ("valid", "suspended", "revoked", "annulled", "expired", "withdrawn")
#: Kinds of history event.
EVENT_KINDS = (
    "created",
    "status_changed",
    "categories_changed",
    "details_changed",
    "consent_changed",
    "removed",
    "restored",
)


class Administration(Base):
    """A customs administration (the EU counts as one, with its member states)."""

    __tablename__ = "administration"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # ISO 3166 alpha-2 codes of the countries the administration acts for.
    countries: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Hosts the administration's connections may fetch from (node URLs).
    allowed_hosts: Mapped[list[Any]] = mapped_column(JSON, default=list)

    programmes: Mapped[list[Programme]] = relationship(back_populates="administration")


class Programme(Base):
    """An AEO programme with its vocabulary and identifier rules."""

    __tablename__ = "programme"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    administration_id: Mapped[int] = mapped_column(ForeignKey("administration.id"))
    # [{"code": "AEOF", "description": ..., "components": ["customs", "security"]}, ...]
    categories: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Scheme of the trader identifier its records carry (EORI, CN_USCC, ...).
    primary_scheme: Mapped[str] = mapped_column(String(32))
    # Scheme whose value matches records across syncs (the EORI for the EU).
    stable_key_scheme: Mapped[str] = mapped_column(String(32))
    authorisation_scheme: Mapped[str | None] = mapped_column(String(32))
    consent_required: Mapped[bool] = mapped_column(Boolean, default=False)
    # The codes to declare for this programme's operators in each administration.
    declaration_codes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Reference-data extras (names of schemes, notes, sources) kept verbatim.
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # When a sync of this programme last succeeded: the data version partners are told.
    data_version: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    administration: Mapped[Administration] = relationship(back_populates="programmes")

    def category_codes(self) -> list[str]:
        return [str(c["code"]) for c in self.categories]


class Operator(Base):
    """One authorisation in one programme, in its current state.

    `stable_key` is the normalised value of the programme's stable-key identifier; records
    are matched on it across syncs. `fingerprint` is the source form's digest, which lets a
    re-sync skip unchanged records before any validation work.
    """

    __tablename__ = "operator"
    __table_args__ = (
        UniqueConstraint("programme_id", "stable_key"),
        Index("ix_operator_programme_status", "programme_id", "status"),
        Index("ix_operator_authorisation", "authorisation_number"),
        Index("ix_operator_country_city", "country", "city"),
        # a sync recognises unchanged records by fingerprint, a batch at a time
        Index("ix_operator_programme_fingerprint", "programme_id", "fingerprint"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("programme.id"))
    stable_key: Mapped[str] = mapped_column(String(64))
    authorisation_number: Mapped[str] = mapped_column(String(64))
    trader_id_scheme: Mapped[str] = mapped_column(String(32))
    trader_id: Mapped[str] = mapped_column(String(64))
    legal_name: Mapped[str] = mapped_column(String(300))
    street: Mapped[str | None] = mapped_column(String(300))
    city: Mapped[str | None] = mapped_column(String(120))
    postcode: Mapped[str | None] = mapped_column(String(32))
    region: Mapped[str | None] = mapped_column(String(64))
    country: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(16))
    status_effective: Mapped[dt.date | None] = mapped_column(Date)
    # [{"code": "AEOC", "status": "valid", "since": "2019-01-01"}, ...]
    categories: Mapped[list[Any]] = mapped_column(JSON, default=list)
    issuing_authority: Mapped[str | None] = mapped_column(String(200))
    authorised_on: Mapped[dt.date | None] = mapped_column(Date)
    valid_from: Mapped[dt.date | None] = mapped_column(Date)
    valid_until: Mapped[dt.date | None] = mapped_column(Date)
    consent_share: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_publish: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str | None] = mapped_column(String(120))
    source_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    # Set while the source no longer lists the operator (a removal, not a status).
    removed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Warnings carried with the record (stricter identifier rules breached, ...).
    warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    # The newest effective date among the operator's events: dates on or after it are
    # answered from this row without reading history.
    last_effective: Mapped[dt.date | None] = mapped_column(Date)

    programme: Mapped[Programme] = relationship()
    identifiers: Mapped[list[OperatorIdentifier]] = relationship(
        back_populates="operator", cascade="all, delete-orphan"
    )


class OperatorIdentifier(Base):
    """An identifier of an operator, normalised.

    `origin` is `declared` (the source sent it) or `derived` (the hub computed it, such as
    a MID built from name and address). `linked` marks identifiers the source declares as
    the operator's own for recognition (an EU AEO's linked MIDs); a derived MID is a
    matching hint, never proof.
    """

    __tablename__ = "operator_identifier"
    __table_args__ = (
        UniqueConstraint("operator_id", "scheme", "value", "origin"),
        Index("ix_operator_identifier_lookup", "scheme", "value"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operator.id", ondelete="CASCADE"))
    scheme: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(String(8), default="declared")
    linked: Mapped[bool] = mapped_column(Boolean, default=True)

    operator: Mapped[Operator] = relationship(back_populates="identifiers")


class OperatorEvent(Base):
    """An append-only history entry: from `effective_date` on, these fields held.

    `changes` maps field names to their new values. The value of a field on day D, as the
    hub knew it at time T, is the one from the latest-recorded event (recorded_at <= T)
    with effective_date <= D that sets it; an annulment applies to every date.
    """

    __tablename__ = "operator_event"
    __table_args__ = (
        Index("ix_operator_event_operator_effective", "operator_id", "effective_date"),
        Index("ix_operator_event_recorded", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operator.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))
    effective_date: Mapped[dt.date] = mapped_column(Date)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The previous values of the changed fields (for display and the change feed).
    previous: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str | None] = mapped_column(String(120))
    sync_run_id: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
