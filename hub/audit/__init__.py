"""The audit log: append-only, hash-chained, signed at the head.

Every entry carries the SHA-256 of the entry before it, so a changed, inserted or deleted
entry breaks the chain where it happened (`aeohub audit verify` names it). The chain head
is signed with the hub's Ed25519 key and served at `GET /api/v1/audit/head`; partners
keep copies and can later show that history was rewritten.

API for the other packages
--------------------------
`record(session, action, *, actor, subject=None, administrations=(), details=None)`
    Append an entry in `session`'s transaction and return it (flushed, not committed):
    the entry exists exactly when the caller's change commits. Call it after the audited
    change, late in the transaction; appends take turns on a chain-head row lock, held
    until the caller commits or rolls back, so commit promptly afterwards.

    - `action`: "<noun>.<verb in the past>": `token.issued`, `token.revoked`,
      `registry.read`, `client.created`, `client.secret_rotated`, `client.disabled`,
      `judgement.added`, `user.login`, `user.login_failed`, `user.created`,
      `user.disabled`, `user.enabled`, `user.password_changed`, `sync.succeeded`, ...
    - `actor`: `client:<client_id>`, `user:<name>`, `cli` or `system`;
      `current_actor()` picks one from the context (see `hub.audit.actors`).
    - `subject`: what it was about, `<kind>:<id>` (`client:abc`, `connection:3`,
      `arrangement:EU-US`, `operator:1234`).
    - `administrations`: the codes of every administration the entry concerns: whose
      data was read or changed, and whose client acted. `aeohub audit export
      --administration A` returns the entries naming A.
    - `details`: JSON-able mapping (dates, sets and tuples are converted). Never put a
      secret or a token in it; record a token's id (`jti`), not the token.

`record_read(session, *, client_id, client_administration, endpoint, operators,
arrangements, administrations, details=None)`
    The `registry.read` entry the API writes for reads of registry data by a client: the
    endpoint, how many and which operators, and the arrangements that allowed it. The API
    buffers its reads (`hub.usage`) and writes one entry per client, endpoint,
    administrations and arrangements per write, listing each request (time, operators,
    look-ups) under `details["requests"]`.

`record_reads(session, reads)`
    Many `record_read` entries at once (`ReadEntry` holds the same arguments), written
    set-based by `record_many`: what the API's buffered reads use.

`acting_as(actor)` / `current_actor()`
    Context for services that do not take an actor argument. In a request, set
    `flask.g.audit_actor` (the API after authenticating a token: `client:<id>`; the
    dashboard after login: `user:<name>`).

Entries the hub writes of its own events live beside those events: `hub.sync.audit`
(`sync.succeeded|failed|held|confirmed|discarded|abandoned`, `connection.added|edited|removed`,
`quarantine.replayed|dismissed`) and `hub.arrangements.audit`
(`arrangement.suspended|resumed|terminated`, `reference.loaded`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from hub.audit.actors import acting_as, current_actor
from hub.audit.models import AuditEntry
from hub.audit.service import NewEntry, record, record_many, verify

__all__ = ["AuditEntry", "ReadEntry", "acting_as", "current_actor", "init_app", "record",
           "record_read", "record_reads", "verify"]

OPERATOR_IDS_KEPT = 10_000


@dataclass(frozen=True)
class ReadEntry:
    """One read of registry data by a client (the arguments of `record_read`)."""

    client_id: str
    client_administration: str | None
    endpoint: str
    operators: Sequence[int | str]
    arrangements: Iterable[str]
    administrations: Iterable[str]
    details: Mapping[str, Any] | None = None

    def entry(self) -> NewEntry:
        ids = list(self.operators)
        body: dict[str, Any] = {
            "endpoint": self.endpoint,
            "count": len(ids),
            "operators": ids[:OPERATOR_IDS_KEPT],
            "arrangements": sorted(set(self.arrangements)),
        }
        if len(ids) > OPERATOR_IDS_KEPT:
            body["operators_truncated"] = True
        body.update(self.details or {})
        codes = set(self.administrations)
        if self.client_administration:
            codes.add(self.client_administration)
        return NewEntry("registry.read", actor=f"client:{self.client_id}",
                        subject=f"client:{self.client_id}", administrations=codes,
                        details=body)


def record_read(session: Session, *, client_id: str, client_administration: str | None,
                endpoint: str, operators: Sequence[int | str], arrangements: Iterable[str],
                administrations: Iterable[str], details: Mapping[str, Any] | None = None
                ) -> AuditEntry:
    """Record that client `client_id` read `operators` through `endpoint`.

    `administrations` are those whose operators were returned; the client's own
    administration is added, so both sides' auditors find the read in their export.
    """
    entry = ReadEntry(client_id, client_administration, endpoint, operators, arrangements,
                      administrations, details).entry()
    return record(session, entry.action, actor=entry.actor, subject=entry.subject,
                  administrations=entry.administrations, details=entry.details)


def record_reads(session: Session, reads: Sequence[ReadEntry]) -> int:
    """`record_read` for each of `reads`, in order, written set-based."""
    return record_many(session, [r.entry() for r in reads])
