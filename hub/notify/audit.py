"""Audit entries for webhook and node-push actions.

Subscriptions created, changed, paused, resumed and deleted, and node pushes, are
administrative changes: they go to the hash-chained audit log (`hub.audit.record`) in
the caller's transaction, naming the client's administration so its auditors find them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.audit import record
from hub.registry.models import Administration


def _administration_code(session: Session, administration_id: int | None) -> list[str]:
    if administration_id is None:
        return []
    code = session.scalar(select(Administration.code)
                          .where(Administration.id == administration_id))
    return [code] if code else []


def audit(session: Session, action: str, *, actor: str, subject: str,
          administration_id: int | None, details: Mapping[str, Any] | None = None) -> None:
    """Append an audit entry naming the administration of `administration_id`."""
    record(session, action, actor=actor, subject=subject,
           administrations=_administration_code(session, administration_id),
           details=dict(details or {}))


def record_notice(session: Session, action: str, sub: Any,
                  details: Mapping[str, Any] | None = None) -> None:
    """An audit entry about a subscription, written by the hub itself (`system`)."""
    client = sub.client
    audit(session, action, actor="system", subject=f"webhook:{sub.public_id}",
          administration_id=client.administration_id if client is not None else None,
          details={"client": client.client_id if client is not None else None,
                   "url": sub.url, **(details or {})})
