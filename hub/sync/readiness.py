"""The sync engine's part of readiness: how fresh each feed is.

A stale feed does not make the hub unready (it keeps serving the last good data), but
`/readyz` names it so that monitoring can alert on it.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from hub import db
from hub.health import add_readiness_check
from hub.sync.connections import feed_age, is_stale
from hub.sync.models import Connection


def feeds_check() -> tuple[bool, dict[str, Any]]:
    """The `feeds` readiness check: each enabled connection's feed age, and which are
    stale."""
    try:
        rows = db.session().scalars(
            select(Connection).where(Connection.enabled.is_(True))).all()
    except SQLAlchemyError as exc:  # the database check says why; this one cannot tell
        db.session().rollback()
        return False, {"error": type(exc).__name__}
    feeds = []
    for connection in rows:
        age = feed_age(connection)
        feeds.append({"connection": connection.name, "programmes": connection.programmes,
                      "age_seconds": round(age) if age is not None else None,
                      "stale": is_stale(connection)})
    stale = [f["connection"] for f in feeds if f["stale"]]
    return True, {"feeds": feeds, "stale": stale}


def init_app(app: Flask) -> None:
    """Register the `feeds` readiness check."""
    add_readiness_check(app, "feeds", feeds_check)
