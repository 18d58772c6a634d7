"""`aeohub audit verify | export | head | keygen`: thin wrappers over the audit service."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import IO

import click
from flask import current_app

from hub import db
from hub.audit import service, signing


def register(cli: click.Group) -> None:
    cli.add_command(audit_group)


@click.group("audit")
def audit_group() -> None:
    """The hash-chained audit log: verify it, export it, show the signed head."""


@audit_group.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def audit_verify(as_json: bool) -> None:
    """Recompute the chain; name the first entry that does not fit (exit 1)."""
    result = service.verify(db.session())
    if as_json:
        click.echo(json.dumps({"ok": result.ok, "checked": result.checked,
                               "head_seq": result.head.seq, "head_hash": result.head.hash,
                               "broken_seq": result.broken_seq,
                               "broken_id": result.broken_id, "reason": result.reason}))
        if not result.ok:
            sys.exit(1)
        return
    if result.ok:
        click.echo(f"audit chain intact: {result.checked} entries, head seq "
                   f"{result.head.seq} hash {result.head.hash}")
        return
    where = (f"entry seq {result.broken_seq}" + (f" (id {result.broken_id})"
                                                 if result.broken_id is not None else ""))
    click.echo(f"audit chain broken at {where}: {result.reason}", err=True)
    click.echo(f"the {result.checked} entries before it verify (up to seq {result.head.seq})",
               err=True)
    sys.exit(1)


def _moment(text: str | None, option: str) -> dt.datetime | None:
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not an ISO date or date-time",
                                 param_hint=option) from exc
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


@audit_group.command("export")
@click.option("--administration", "-a", required=True,
              help="Administration code whose data and clients the entries concern.")
@click.option("--since", help="From this date or UTC date-time (ISO), inclusive.")
@click.option("--until", help="Up to this date or UTC date-time (ISO), exclusive.")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-",
              show_default=True, help="Where to write the NDJSON.")
def audit_export(administration: str, since: str | None, until: str | None,
                 output: IO[str]) -> None:
    """Entries about one administration's data and clients, as NDJSON (one per line)."""
    written = 0
    code = administration.strip().upper()
    for item in service.export(db.session(), code,
                               since=_moment(since, "--since"), until=_moment(until, "--until")):
        output.write(service.to_ndjson_line(item) + "\n")
        written += 1
    if not written:
        named = service.administrations_named(db.session())
        if code not in named:  # a typo reads as "nothing happened" otherwise
            raise click.BadParameter(
                f"no entry of the log concerns {code!r} (it names "
                f"{', '.join(named) or 'no administration yet'})",
                param_hint="'--administration'")
    click.echo(f"{written} entries exported", err=True)


@audit_group.command("head")
def audit_head() -> None:
    """Print the signed chain head (what /api/v1/audit/head serves)."""
    key = signing.signing_key(current_app.config)
    head = service.head(db.session())
    click.echo(json.dumps(signing.sign_head(key, head.seq, head.hash, head.recorded_at_text),
                          indent=2))


@audit_group.command("keygen")
def audit_keygen() -> None:
    """Print a new Ed25519 key for AEOHUB_AUDIT_SIGNING_KEY (base64url seed)."""
    click.echo(signing.new_key_text())
