"""`aeohub verify`, `match`, `crosswalk`, `entities show`, `judgements add|list`.

Thin wrappers over the recognition services; `--json` prints the service's fields.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import click

from hub import db
from hub.errors import HubError
from hub.exitcodes import VERIFY_EXIT
from hub.ids import ROW_ID
from hub.recognition.crosswalk import crosswalk
from hub.recognition.entities import add_judgement, entity_of, list_judgements
from hub.recognition.matching import match
from hub.recognition.service import verify
from hub.recognition.trader import DeclaredTrader


def register(cli: click.Group) -> None:
    cli.add_command(verify_command)
    cli.add_command(match_command)
    cli.add_command(crosswalk_command)
    cli.add_command(entities_group)
    cli.add_command(judgements_group)


def _reference_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--scheme", help="Identifier scheme (EORI, MID, US_CTPAT, ...)."),
        click.option("--value", help="Identifier value."),
        click.option("--name", help="Legal name."),
        click.option("--street", help="Street line."),
        click.option("--city", help="City."),
        click.option("--postcode", help="Postcode."),
        click.option("--country", help="ISO 3166 alpha-2 country code."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _reference(kwargs: dict[str, Any]) -> DeclaredTrader:
    return DeclaredTrader(**{k: kwargs.pop(k) for k in
                              ("scheme", "value", "name", "street", "city", "postcode",
                               "country")})


def _operator_ref(ctx: click.Context, param: click.Parameter,
                  value: str | None) -> int | str | None:
    """An operator by id or as PROGRAMME:STABLE_KEY. An id is checked as every row id is
    (`ROW_ID`): a number no row can have is a usage error, not a query."""
    if value is None or not value.isdigit():
        return value
    if not value.isascii():  # digits of another script: neither an id nor a key
        raise click.BadParameter(f"{value!r} is not an operator id or PROGRAMME:STABLE_KEY",
                                 ctx, param)
    # click's number types convert the command line's text, though typed for numbers
    return int(ROW_ID.convert(value, param, ctx))  # type: ignore[arg-type]


def _fail(exc: HubError) -> click.ClickException:
    details = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(exc.fields.items()))
    return click.ClickException(f"{exc.detail}" + (f" ({details})" if details else ""))


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


@click.command("verify")
@click.option("--programme", required=True, help="Recognising programme (e.g. US-CTPAT).")
@click.option("--date", "day", help="Day asked about (YYYY-MM-DD, default today).")
@click.option("--flow", default="import", show_default=True,
              type=click.Choice(["import", "export"]), help="The goods' flow.")
@click.option("--known-at", help="Answer as the hub knew things then (ISO time, UTC if naive).")
@_reference_options
def verify_command(programme: str, day: str | None, flow: str, known_at: str | None,
                   as_json: bool, **kwargs: Any) -> None:
    """Is a trader recognised by PROGRAMME on a date, and why (not)?

    Exit status: 0 recognised, 3 not recognised, 4 unknown or ambiguous trader,
    1 error, 2 usage.
    """
    reference = _reference(kwargs)
    try:
        when = dt.date.fromisoformat(day) if day else None
        known = dt.datetime.fromisoformat(known_at) if known_at else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if known is not None and known.tzinfo is None:
        known = known.replace(tzinfo=dt.UTC)
    try:
        decision = verify(db.session(), reference, programme, when, flow, known)
    except HubError as exc:
        raise _fail(exc) from exc
    data = decision.to_dict()
    if as_json:
        _print_json(data)
    else:
        _print_decision(data, programme, flow)
    raise SystemExit(VERIFY_EXIT[data["decision"]])


def _print_decision(data: dict[str, Any], programme: str, flow: str) -> None:
    click.echo(f"{data['decision']} by {programme} on {data['date']} ({flow})")
    if data["operator"]:
        op = data["operator"]
        click.echo(f"operator {op['id']}: {op['legal_name']} ({op['programme']} "
                   f"{op['stable_key']}), status {op['status']}")
    for arrangement in data["arrangements"]:
        click.echo(f"  under {arrangement['code']}: {', '.join(arrangement['categories'])}")
    for candidate in data["candidates"]:
        click.echo(f"  candidate {candidate['operator_id']}: {candidate['legal_name']} "
                   f"({candidate['programme']}) score {candidate['score']:.2f}")
    for reason in data["reasons"]:
        click.echo(f"  {reason['code']}: {reason['message']}")
    age = data["data_age_seconds"]
    click.echo(f"data version {data['data_version'] or 'never synced'}"
               + (f" ({age} s old)" if age is not None else "")
               + (" STALE" if data["stale"] else ""))


@click.command("match")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1),
              help="At most this many candidates.")
@_reference_options
def match_command(limit: int, as_json: bool, **kwargs: Any) -> None:
    """Scored, explained candidates for a trader reference."""
    reference = _reference(kwargs)
    try:
        result = match(db.session(), reference, limit)
    except HubError as exc:
        raise _fail(exc) from exc
    if as_json:
        _print_json(result.to_dict())
        return
    click.echo(result.decision + (f": operator {result.best.operator_id}" if result.best else ""))
    for candidate in result.candidates:
        click.echo(f"{candidate.score:.4f}  {candidate.operator_id}  {candidate.legal_name} "
                   f"({candidate.programme} {candidate.stable_key}) via {candidate.via}")
        for line in candidate.explanation:
            click.echo(f"        {line}")
    for reason in result.reasons:
        click.echo(f"{reason.code}: {reason.message}")


@click.command("crosswalk")
@click.option("--operator", "operator_id", required=True, type=ROW_ID,
              help="Operator id.")
@click.option("--declared-in", required=True, help="Declaring administration (US, EU, CN...).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def crosswalk_command(operator_id: int, declared_in: str, as_json: bool) -> None:
    """The code(s) to declare in an administration for an operator."""
    try:
        answer = crosswalk(db.session(), operator_id, declared_in)
    except HubError as exc:
        raise _fail(exc) from exc
    if as_json:
        _print_json(answer.to_dict())
        return
    click.echo(f"operator {answer.operator_id} ({answer.programme}) declared in "
               f"{answer.declared_in}"
               + (f", recognised there under {', '.join(answer.arrangements)}"
                  if answer.arrangements else ", no arrangement recognises it there"))
    for code in answer.codes:
        shown = code.get("code") or (f"CPC {code['cpc']} PC1 {code['pc1']} PC2 {code['pc2']}")
        click.echo(f"  declare {shown}" + (f"  [{code['field']}]" if "field" in code else ""))
    for warning in answer.warnings:
        click.echo(f"  WARNING: {warning}")


@click.group("entities")
def entities_group() -> None:
    """Companies linked across programmes."""


@entities_group.command("show")
@click.argument("operator_id", type=ROW_ID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def entities_show(operator_id: int, as_json: bool) -> None:
    """The entity holding OPERATOR_ID (an entity's id is its smallest operator id)."""
    try:
        entity = entity_of(db.session(), operator_id)
    except HubError as exc:
        raise _fail(exc) from exc
    if as_json:
        _print_json(entity.to_dict())
        return
    click.echo(f"entity {entity.id}: {len(entity.members)} operator(s)")
    for member in entity.members:
        click.echo(f"  {member['operator_id']}: {member['legal_name']} ({member['programme']} "
                   f"{member['stable_key']}, {member['country']}, {member['status']})")
    for link in entity.links:
        click.echo(f"  link {link.left}-{link.right} by {link.kind}: {link.detail}")
    for link in entity.broken:
        click.echo(f"  broken {link.left}-{link.right} ({link.kind}: {link.detail}): "
                   "judged different")


@click.group("judgements")
def judgements_group() -> None:
    """Human judgements: are two operators the same company?"""


@judgements_group.command("add")
@click.argument("left", callback=_operator_ref)
@click.argument("right", callback=_operator_ref)
@click.option("--verdict", required=True, type=click.Choice(["same", "different"]),
              help="Whether they are the same company.")
@click.option("--by", "actor", required=True, help="Who judged.")
@click.option("--reason", required=True, help="Why.")
def judgements_add(left: int | str, right: int | str, verdict: str, actor: str,
                   reason: str) -> None:
    """Judge LEFT and RIGHT (operator ids or PROGRAMME:STABLE_KEY) the same or different."""
    session = db.session()
    try:
        judgement = add_judgement(session, left, right, verdict, actor=actor, reason=reason)
    except HubError as exc:
        raise _fail(exc) from exc
    click.echo(f"judgement {judgement.id}: {judgement.left_programme}:{judgement.left_key} "
               f"and {judgement.right_programme}:{judgement.right_key} are "
               f"{'the same company' if verdict == 'same' else 'different companies'}")


@judgements_group.command("list")
@click.option("--operator", callback=_operator_ref,
              help="Only judgements on this operator (id or PROGRAMME:KEY).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def judgements_list(operator: int | str | None, as_json: bool) -> None:
    """Judgements, oldest first (the latest on a pair wins)."""
    try:
        rows = list_judgements(db.session(), operator)
    except HubError as exc:
        raise _fail(exc) from exc
    data = [{"id": j.id, "left": f"{j.left_programme}:{j.left_key}",
             "right": f"{j.right_programme}:{j.right_key}", "verdict": j.verdict,
             "actor": j.actor, "reason": j.reason, "at": j.created_at.isoformat()}
            for j in rows]
    if as_json:
        _print_json(data)
        return
    for item in data:
        click.echo(f"{item['id']}  {item['at']}  {item['left']} {item['verdict']} "
                   f"{item['right']}  by {item['actor']}: {item['reason']}")
