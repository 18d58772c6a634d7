"""Node push: a node tells the hub that its registry changed, and the hub syncs at once.

`request_sync` marks the connection (`Connection.notify_requested_at`); the scheduler
process (`hub.sync.scheduler.HubScheduler.poll_notifications`) sees the mark on its next
poll and runs an incremental sync through the same lease and claim as scheduled runs.
A mark set while a run is going coalesces with every other notification into one
follow-up run. A client may push only for connections of its own administration (an
`admin` client for any); any other connection is reported as not found, so a client
cannot learn which connections other administrations have.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from hub import clock
from hub.auth.service import Principal
from hub.db import transactional
from hub.errors import Conflict, Forbidden, NotFound
from hub.notify.audit import audit
from hub.sync import lease
from hub.sync.connections import get_connection
from hub.sync.models import Connection


@transactional
def request_sync(session: Session, principal: Principal, ref: str | int) -> dict[str, Any]:
    """Ask for an immediate sync of connection `ref` (name or id)."""
    if not principal.is_admin and principal.administration_id is None:
        raise Forbidden("this client belongs to no administration, so it has no "
                        "connections to notify about")
    try:
        connection = get_connection(
            session, ref,
            administration_id=None if principal.is_admin else principal.administration_id)
    except NotFound as exc:
        raise NotFound(f"no connection {ref!r} of this client's administration",
                       fields={"connection": "unknown"}) from exc
    if not connection.enabled:
        raise Conflict(f"connection {connection.name!r} is disabled; enable it first",
                       fields={"connection": "disabled"})
    now = clock.now()
    marked = session.execute(
        update(Connection)
        .where(Connection.id == connection.id, Connection.notify_requested_at.is_(None))
        .values(notify_requested_at=now)).rowcount  # type: ignore[attr-defined]
    running = lease.held(session, connection.id, now)
    session.refresh(connection, ["notify_requested_at"])
    requested = connection.notify_requested_at or now
    audit(session, "node.notified", actor=f"client:{principal.client_id}",
          subject=f"connection:{connection.id}", administration_id=connection.administration_id,
          details={"connection": connection.name, "coalesced": not marked})
    return {
        "connection": connection.name,
        "connection_id": connection.id,
        "requested_at": requested.isoformat(),
        # Already asked for and not yet started: this notification joins that request.
        "coalesced": not marked,
        # A run is going: the requested sync follows it.
        "sync_running": running,
        "scheduled": "follow-up run after the current one" if running else "immediate run",
    }
