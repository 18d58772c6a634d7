"""What every partner request leaves behind: usage counts, metrics, the audited read.

Called by the routes after they built their answer (so only what the client actually
received is counted and audited). Writing is buffered by `hub.usage`; nothing here waits
on the database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flask import request

from hub import db
from hub.auth.guard import current_principal
from hub.auth.policy import View


def _snapshot() -> Any:
    from hub.recognition.rules import reference_snapshot

    return reference_snapshot(db.reader())


def _programmes() -> Mapping[str, Any]:
    programmes: Mapping[str, Any] = _snapshot().programmes
    return programmes


def _client_facts() -> tuple[str, str | None, str | None]:
    principal = current_principal()
    by_id = _snapshot().by_id  # built once per reference version, not per request
    own = by_id.get(principal.programme_id) if principal.programme_id else None
    return (principal.client_id, own.code if own else None,
            own.administration if own else None)


def note_read(view: View, records: Iterable[Mapping[str, Any]], *,
              extra: Mapping[str, Any] | None = None) -> None:
    """Audit the operators a response carried (one entry per request), with the
    arrangements that allowed each programme's operators to be shared."""
    from hub.usage import Read, recorder

    records = [r for r in records if r.get("id") is not None]
    if not records:
        return
    client_id, _programme, client_administration = _client_facts()
    programmes = _programmes()
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
    if client_administration:
        administrations.add(client_administration)
    recorder().read(Read(client_id=client_id, client_administration=client_administration,
                         endpoint=request.path, operators=operator_ids,
                         arrangements=arrangements, administrations=administrations,
                         details=dict(extra or {})))


def note_decisions(view: View, decisions: Sequence[Mapping[str, Any]]) -> None:
    """Count verify decisions per arrangement and outcome, and audit the operators."""
    from hub import metrics
    from hub.usage import recorder

    client_id, programme, _admin = _client_facts()
    outcomes = []
    for decision in decisions:
        arrangements = decision.get("arrangements") or []
        code = arrangements[0].get("code") if arrangements else None
        outcomes.append((str(decision.get("decision")), code))
    for outcome, count in Counter(outcome for outcome, _code in outcomes).items():
        metrics.count_decision(outcome, count)
    recorder().lookups(client_id, programme, "verify", outcomes)
    note_read(view, [d["operator"] for d in decisions if d.get("operator")],
              extra={"lookups": len(decisions)})


def note_match(view: View, candidates: Sequence[Mapping[str, Any]]) -> None:
    """Count a match as a hit or a miss, and audit the candidates shown."""
    from hub.usage import recorder

    client_id, programme, _admin = _client_facts()
    outcome = "match" if candidates else "no_match"
    recorder().lookups(client_id, programme, "match", [(outcome, None)])
    records = []
    for candidate in candidates:
        operator = candidate.get("operator")
        if isinstance(operator, Mapping):
            records.append(operator)
        else:
            records.append({"id": candidate.get("operator_id"),
                            "programme": candidate.get("programme")})
    note_read(view, records)
