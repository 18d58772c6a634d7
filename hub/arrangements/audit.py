"""Audit entries for changes to arrangements and to the reference data.

- `arrangement_status_changed`: an arrangement was suspended, resumed or terminated.
- `reference_loaded`: a reference-data load changed something.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from hub.arrangements.models import Arrangement, ArrangementStatusChange
from hub.audit import current_actor, record
from hub.audit.models import AuditEntry

REFERENCE_CHANGES_KEPT = 200

_STATUS_ACTIONS = {"suspended": "suspended", "in_force": "resumed", "terminated": "terminated"}

def arrangement_status_changed(session: Session, arrangement: Arrangement,
                               change: ArrangementStatusChange, previous: str | None,
                               actor: str | None = None) -> AuditEntry:
    """`arrangement.suspended|resumed|terminated`, for every party's administration."""
    codes = {p.programme.administration.code for p in arrangement.parties
             if p.programme is not None}
    return record(session, f"arrangement.{_STATUS_ACTIONS.get(change.status, change.status)}",
                  actor=current_actor(actor), subject=f"arrangement:{arrangement.code}",
                  administrations=codes,
                  details={"arrangement": arrangement.code, "status": change.status,
                           "effective_date": change.effective_date, "previous": previous,
                           "note": change.note})


def reference_loaded(session: Session, report: Any, source: str) -> AuditEntry:
    """`reference.loaded` when a reference-data load changed something."""
    changes = list(report.changes)
    return record(session, "reference.loaded", actor=current_actor(), subject="reference",
                  details={"source": source, "created": dict(report.created),
                           "updated": dict(report.updated),
                           "changes": changes[:REFERENCE_CHANGES_KEPT],
                           "changes_total": len(changes)})
