"""Web models: dashboard users and their signed-in sessions.

A dashboard user is either an administration's staff member (`administration_id` set:
they see that administration's connections, runs, quarantine and clients) or a hub
administrator (`hub_admin`: they see everything). Passwords are kept only as werkzeug
hashes (scrypt).

`DashboardSession` is a signed-in session, kept on the server (`hub.web.sessions`): the
browser's cookie carries only a random token, stored here as its SHA-256, so ending the
row ends the session whatever the cookie says.

The look-up and sign-in rate windows are `hub.auth.windows`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub import clock
from hub.db import Base, UTCDateTime
from hub.registry.models import Administration


class DashboardUser(Base):
    """Someone who may sign in to the dashboard."""

    __tablename__ = "web_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(120), unique=True)
    # werkzeug.security hash ("scrypt:32768:8:1$salt$hash").
    password_hash: Mapped[str] = mapped_column(String(255))
    # The administration whose staff the user belongs to (None for hub administrators).
    administration_id: Mapped[int | None] = mapped_column(ForeignKey("administration.id"))
    hub_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    administration: Mapped[Administration | None] = relationship()


class DashboardSession(Base):
    """One signed-in dashboard session of one user."""

    __tablename__ = "web_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    # SHA-256 (hex) of the session's random token; the token itself is only in the cookie.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_user.id", ondelete="CASCADE"),
                                         index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
