"""What every partner request leaves behind: usage counts, metrics, the audited read.

Called by the routes after they built their answer (so only what the client actually
received is counted and audited). Writing is buffered by `hub.usage`; nothing here waits
on the database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from flask import request

from hub import db, metrics
from hub.auth.guard import current_principal
from hub.auth.policy import View
from hub.recognition.rules import cached_reference
from hub.usage import Read, recorder


class _Facts(NamedTuple):
    """The client behind the request, and the programmes (read once per hook call)."""

    client_id: str
    programme: str | None
    administration: str | None
    programmes: Mapping[str, Any]


def _facts() -> _Facts:
    principal = current_principal()
    snapshot = cached_reference(db.reader())  # built once per reference version
    own = snapshot.by_id.get(principal.programme_id) if principal.programme_id else None
    return _Facts(principal.client_id, own.code if own else None,
                  own.administration if own else None, snapshot.programmes)


def note_read(view: View, records: Iterable[Mapping[str, Any]], *,
              extra: Mapping[str, Any] | None = None, facts: _Facts | None = None) -> None:
    """Audit the operators a response carried (one entry per request), with the
    arrangements that allowed each programme's operators to be shared."""
    records = [r for r in records if r.get("id") is not None]
    if not records:
        return
    facts = facts or _facts()
    programmes = facts.programmes
    operator_ids: list[int] = []
    arrangements: set[str] = set()
    administrations: set[str] = set()
    for record in records:
        operator_ids.append(int(record["id"]))
        rule = programmes.get(str(record.get("programme") or ""))
        if rule is None:
            continue
        administrations.add(rule.administration)
        grant = view.grants.get(rule.id)
        if grant is not None:
            arrangements.update(grant.arrangements)
    if facts.administration:
        administrations.add(facts.administration)
    recorder().read(Read(client_id=facts.client_id,
                         client_administration=facts.administration,
                         endpoint=request.path, operators=operator_ids,
                         arrangements=arrangements, administrations=administrations,
                         details=dict(extra or {})))


def note_decisions(view: View, decisions: Sequence[Mapping[str, Any]]) -> None:
    """Count verify decisions per arrangement and outcome, and audit the operators."""
    facts = _facts()
    outcomes = []
    for decision in decisions:
        arrangements = decision.get("arrangements") or []
        code = arrangements[0].get("code") if arrangements else None
        outcomes.append((str(decision.get("decision")), code))
    for outcome, count in Counter(outcome for outcome, _code in outcomes).items():
        metrics.count_decision(outcome, count)
    recorder().lookups(facts.client_id, facts.programme, "verify", outcomes)
    note_read(view, [d["operator"] for d in decisions if d.get("operator")],
              extra={"lookups": len(decisions)}, facts=facts)


def note_match(view: View, candidates: Sequence[Mapping[str, Any]]) -> None:
    """Count a match as a hit or a miss, and audit the candidates shown."""
    facts = _facts()
    outcome = "match" if candidates else "no_match"
    recorder().lookups(facts.client_id, facts.programme, "match", [(outcome, None)])
    records = []
    for candidate in candidates:
        operator = candidate.get("operator")
        if isinstance(operator, Mapping):
            records.append(operator)
        else:
            records.append({"id": candidate.get("operator_id"),
                            "programme": candidate.get("programme")})
    note_read(view, records, facts=facts)
