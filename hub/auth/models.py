"""OAuth clients, access tokens, spent client-assertion ids and rate-limit windows.

Nothing secret is stored in clear: a client secret is kept as a salted scrypt hash and an
access token as the SHA-256 of its (256-bit random) value, so a copy of the database
cannot be used to call the API.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub import clock
from hub.db import Base, UTCDateTime
from hub.registry.models import Programme

#: Every scope a client may hold.
SCOPES = (
    "verify",
    "match",
    "registry:read",
    "changes:read",
    "export",
    "webhooks",
    "node:admin",
    "admin",
)


class OAuthClient(Base):
    """A partner's OAuth client: acts for one programme, holds a set of scopes."""

    __tablename__ = "oauth_client"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(48), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # The programme the client acts for (None only for hub-wide admin clients).
    programme_id: Mapped[int | None] = mapped_column(ForeignKey("programme.id"))
    # The administration the client belongs to (that of its programme).
    administration_id: Mapped[int | None] = mapped_column(ForeignKey("administration.id"))
    scopes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # "scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>"; None for a key-only client.
    secret_hash: Mapped[str | None] = mapped_column(String(255))
    # Public keys for private_key_jwt (a JWK set), None when the client has none.
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Requests allowed per rate window (None: the configured default).
    rate_limit: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    secret_rotated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # The secret before the last rotation, accepted until `previous_secret_expires_at`
    # (the overlap that lets a partner roll its deployments onto the new one).
    previous_secret_hash: Mapped[str | None] = mapped_column(String(255))
    previous_secret_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    programme: Mapped[Programme | None] = relationship()

    @property
    def is_admin(self) -> bool:
        return "admin" in (self.scopes or [])


class OAuthToken(Base):
    """An opaque access token, known to the hub only by its SHA-256 digest."""

    __tablename__ = "oauth_token"
    __table_args__ = (Index("ix_oauth_token_client", "client_pk", "revoked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_pk: Mapped[int] = mapped_column(ForeignKey("oauth_client.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(255))
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    client: Mapped[OAuthClient] = relationship()


class ClientAssertionJti(Base):
    """A `jti` of a client assertion already used (private_key_jwt replay protection)."""

    __tablename__ = "oauth_assertion_jti"
    __table_args__ = (UniqueConstraint("client_pk", "jti"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_pk: Mapped[int] = mapped_column(ForeignKey("oauth_client.id", ondelete="CASCADE"))
    jti: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class RateWindow(Base):
    """Requests granted to one client in one fixed window, shared by every worker."""

    __tablename__ = "api_rate_window"

    client_pk: Mapped[int] = mapped_column(
        ForeignKey("oauth_client.id", ondelete="CASCADE"), primary_key=True
    )
    window_start: Mapped[int] = mapped_column(Integer, primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)
