"""Verify and match for partners: the recognition service, seen through the policy.

The recognition service answers for a recognising programme within the caller's view
(the policy's operators this client may see today): an operator outside the view is never
found, so its answer is, through the same path, the answer for a trader that does not
exist, whatever the date, flow or known-at asked about. A visible operator is cut down to
the fields its arrangements share.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.api import service
from hub.arrangements.models import ArrangementDirection
from hub.auth import guard, policy, shared
from hub.auth.policy import View
from hub.errors import Forbidden, HubError, InvalidInput
from hub.recognition import service as recognition
from hub.recognition.matching import match as match_candidates
from hub.recognition.service import CurrentRow, ReadAhead
from hub.recognition.trader import DeclaredTrader
from hub.registry.models import Operator, Programme


def reference_of(trader: Mapping[str, Any]) -> DeclaredTrader:
    address = trader.get("address") or {}
    return DeclaredTrader(
        scheme=trader.get("scheme"), value=trader.get("value"), name=trader.get("name"),
        street=address.get("street"), city=address.get("city"),
        postcode=address.get("postcode"),
        country=(address.get("country") or None) and str(address["country"]).upper())


def recognising_programme(session: Session, view: View, requested: str | None) -> str:
    """The programme a verify answers for: the client's own; an admin names one.

    Programme codes come from the per-worker programme cache (`hub.auth.shared.programme_codes`,
    refreshed when an id is missing): no query on the hot path.
    """
    if view.is_admin:
        if not requested:
            raise InvalidInput("an admin client names the recognising programme",
                               fields={"programme": "required for admin clients"})
        code = requested
    else:
        if view.programme_id is None:
            raise Forbidden("the client acts for no programme")
        own = shared.programme_codes(session, [view.programme_id]).get(view.programme_id)
        if own is None:
            raise Forbidden("the client acts for no programme")
        code = own[0]
        if requested and requested != code:
            raise Forbidden(f"the client acts for {code}, not {requested}",
                            fields={"programme": "not the client's programme"})
        return code
    if code not in {c for c, _version in shared.programme_codes(session, ()).values()} and \
            session.scalar(select(Programme.id).where(Programme.code == code)) is None:
        raise InvalidInput(f"programme {code} does not exist", fields={"programme": "unknown"})
    return code


def _operator_id(answer: Mapping[str, Any]) -> int | None:
    """The id of the operator a verify answer names (None: it names none)."""
    operator = answer["operator"]
    return None if operator is None else int(operator["id"])


@functools.lru_cache(maxsize=256)
def _kept(grant: policy.Grant) -> frozenset[str]:
    """The keys of an answer's operator that `grant` shares (computed once per grant)."""
    keep = grant.fields | {"id", "operator_id", "programme", "score", "via", "features",
                           "explanation", "same_company_as"}
    if "trader_id" in grant.fields:
        keep |= {"stable_key"}
    return frozenset(keep)


def _cut(record: Mapping[str, Any], grant: policy.Grant) -> dict[str, Any]:
    keep = _kept(grant)
    return {k: v for k, v in record.items() if k in keep}


def filter_answers(session: Session, view: View, answers: Sequence[dict[str, Any]],
                   known: Mapping[int, CurrentRow] | None = None
                   ) -> list[dict[str, Any]]:
    """Cut recognition answers (`Decision.to_dict()`, changed in place) down to the fields
    the view's grants share (set-based: one query for all operators, none for those whose
    current rows the recognition service already read: `known`).

    The recognition service answered within the view (`view=`): an operator outside it
    was never found, so every operator an answer names is inside it.
    """
    ids = {i for i in (_operator_id(a) for a in answers) if i is not None}
    known = known or {}
    # The operators whose rows the service read were found within the view: their grant
    # is their programme's (no second query).
    allowed = {i: grant for i in ids & known.keys()
               if (grant := policy.grant_of(view, known[i].programme_id)) is not None}
    allowed.update(policy.grants_of_ids(session, view, ids - known.keys()))
    out = []
    for answer in answers:
        op_id = _operator_id(answer)
        if op_id is None:
            out.append(_drop_candidates(session, view, answer))
            continue
        grant = allowed.get(op_id)
        if grant is None:  # cannot happen: the answer was found within the view
            raise HubError("a verify answer named an operator outside the client's view")
        answer["operator"] = _cut(answer["operator"], grant)
        out.append(_drop_candidates(session, view, answer))
    return out


def _drop_candidates(session: Session, view: View, answer: dict[str, Any]) -> dict[str, Any]:
    """Candidates listed in an answer (an ambiguous match) pass through the policy too."""
    if answer["candidates"]:
        answer["candidates"] = filter_candidates(session, view, answer["candidates"])
    return answer


def filter_candidates(session: Session, view: View, candidates: Sequence[Mapping[str, Any]]
                      ) -> list[dict[str, Any]]:
    """The candidates (`Candidate.to_dict()`) the view may see, each cut down to the
    fields its grant shares."""
    allowed = policy.grants_of_ids(session, view, {c["operator_id"] for c in candidates})
    return [_cut(c, grant) for c in candidates
            if (grant := allowed.get(c["operator_id"])) is not None]


def authenticate(payload: Mapping[str, Any]) -> ReadAhead | None:
    """Authenticate a verify request (`guard.authenticate_reading`), its token's statement
    also reading the operators of the trader's identifier: a verify of one identifier is
    one round trip to the database. Returns those rows for `verify` (None: none read)."""
    params = recognition.identifier_read(reference_of(payload["trader"]))
    read = recognition.IDENTIFIER_READ if params is not None else None
    rows = guard.authenticate_reading(read, params or {})
    return None if params is None else recognition.read_ahead_of(params, rows)


def verify(session: Session, view: View, payload: Mapping[str, Any],
           read_ahead: ReadAhead | None = None) -> dict[str, Any]:
    """The filtered answer for one reference; `read_ahead` is what `authenticate` read
    in `session` (the request's reader)."""
    programme = recognising_programme(session, view, payload.get("programme"))
    reference = reference_of(payload["trader"])
    current: dict[int, Any] = {}
    decision = recognition.verify(session, reference, programme, day=payload.get("date"),
                                  flow=payload.get("flow") or "import",
                                  known_at=payload.get("known_at"), current_rows=current,
                                  read_ahead=read_ahead, view=view)
    answer = filter_answers(session, view, [decision.to_dict()], current)[0]
    add_declare(session, view, [answer], programme, payload.get("date"), current)
    return answer


def add_declare(session: Session, view: View, answers: Sequence[dict[str, Any]],
                programme: str, day: dt.date | None, known: Mapping[int, CurrentRow]
                ) -> None:
    """Give each answer that names an operator its `declare` member: the code(s) to
    declare for it in the recognising programme's administration (the crosswalk, cut to
    what the operator's grant shares)."""
    ids = {i for i in (_operator_id(a) for a in answers) if i is not None}
    if not ids:
        return
    grants = {i: grant for i in ids & known.keys()
              if (grant := policy.grant_of(view, known[i].programme_id)) is not None}
    grants.update(policy.grants_of_ids(session, view, ids - grants.keys()))
    declaring = service.administration_of(session, programme)
    for answer in answers:
        op_id = _operator_id(answer)
        if op_id is None or op_id not in grants:
            continue
        codes = service.declaration_codes(session, grants[op_id], op_id, declaring, day)
        answer["declare"] = {k: codes[k] for k in ("declared_in", "codes", "warnings",
                                                    "arrangements")}


#: The decision of a batch item that could not be read; its `errors` name the fields.
INVALID_ITEM = "invalid_reference"


def invalid_item(position: int, fields: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The answer for a malformed batch item: its position and each failing field."""
    return {"decision": INVALID_ITEM, "position": position,
            "detail": f"trader {position} is invalid: {', '.join(sorted(fields))}",
            "errors": [{"field": name, "detail": message}
                       for name, messages in sorted(fields.items()) for message in messages]}


def verify_batch(session: Session, view: View, payload: Mapping[str, Any]
                 ) -> list[dict[str, Any]]:
    """One answer per trader, in order: a decision, or for a malformed trader an
    `invalid_reference` answer naming its fields (the others are answered all the same)."""
    programme = recognising_programme(session, view, payload.get("programme"))
    item_errors: dict[int, Mapping[str, Sequence[str]]] = dict(
        payload.get("item_errors") or {})
    positions: list[int] = []
    references = []
    for position, trader in enumerate(payload["traders"]):
        if trader is None:
            continue
        reference = reference_of(trader)
        try:  # what the recognition service would refuse for the whole batch
            reference.check()
        except InvalidInput as exc:
            item_errors[position] = {f"traders.{position}.{name}": messages
                                     for name, messages in exc.fields.items()}
            continue
        positions.append(position)
        references.append(reference)
    day: dt.date = payload.get("date") or dt.datetime.now(dt.UTC).date()
    # The dict form builds the answers while the recognition service's garbage collector
    # pause lasts: what a batch serialises anyway.
    current: dict[int, Any] = {}
    decisions = recognition.verify_many_dicts(session, references, programme, day,
                                              payload.get("flow") or "import",
                                              payload.get("known_at"), current_rows=current,
                                              view=view) if references else []
    answered = filter_answers(session, view, decisions, current)
    if payload.get("declare"):
        add_declare(session, view, answered, programme, day, current)
    if not item_errors:
        return answered
    # put the answers and the invalid items back in the request's order
    by_position = dict(zip(positions, answered, strict=True))
    by_position.update((p, invalid_item(p, f)) for p, f in item_errors.items())
    return [by_position[p] for p in range(len(payload["traders"]))]


def match(session: Session, view: View, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Candidates for a trader reference among the operators the client may see today
    (the matcher keeps only those before it decides or cuts to the limit)."""
    reference = reference_of(payload["trader"])
    limit = int(payload.get("limit") or 10)
    result = match_candidates(session, reference, limit=limit,
                              scope=lambda ids: policy.grants_of_ids(session, view, ids))
    return filter_candidates(session, view, [c.to_dict() for c in result.candidates])


def recognitions_of(session: Session, view: View, operator: Operator) -> list[dict[str, Any]]:
    """Where a visible operator is recognised: for the client's programme (admins: every
    programme with an arrangement in force recognising the operator's programme)."""
    if view.is_admin:
        recognising = sorted(set(session.scalars(
            select(Programme.code).join(ArrangementDirection,
                                        ArrangementDirection.recognising_id == Programme.id)
            .where(ArrangementDirection.recognised_id == operator.programme_id))))
    else:
        recognising = [recognising_programme(session, view, None)]
    trader = {"scheme": operator.trader_id_scheme, "value": operator.trader_id}
    out = []
    for code in recognising:
        answer = verify(session, view, {"trader": trader, "programme": code})
        out.append({"recognising_programme": code, **answer})
    return out
