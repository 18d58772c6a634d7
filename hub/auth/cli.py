"""`aeohub clients ...`: create, list, disable, enable and rotate the secrets of clients."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from flask import current_app

from hub.auth import service
from hub.db import get_db
from hub.errors import HubError


@contextmanager
def _as_click_errors() -> Iterator[None]:
    try:
        yield
    except HubError as exc:
        raise click.ClickException(exc.detail) from exc


def register(cli: click.Group) -> None:
    cli.add_command(clients)


@click.group("clients")
def clients() -> None:
    """Manage partner OAuth clients."""


@clients.command("create")
@click.option("--name", required=True, help="A name for people (the partner's system).")
@click.option("--programme", default=None, help="The programme the client acts for.")
@click.option("--scopes", required=True, help="Comma-separated scopes (verify,match,...).")
@click.option("--jwks", "jwks_path", type=click.Path(exists=True, dir_okay=False,
                                                      path_type=Path),
              default=None, help="The client's public JWK set (for private_key_jwt).")
@click.option("--rate-limit", type=int, default=None,
              help="Quota units per rate window (a request costs 1, a batch its items).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def create(name: str, programme: str | None, scopes: str, jwks_path: Path | None,
           rate_limit: int | None, as_json: bool) -> None:
    """Register a client and print its id and secret (the secret is shown only once).

    A client registered with --jwks gets no secret: it authenticates with its keys only."""
    jwks = json.loads(jwks_path.read_text()) if jwks_path else None
    with _as_click_errors(), get_db().session_scope(write=True) as session:
        created = service.create_client(session, name=name, programme=programme,
                                        scopes=scopes, jwks=jwks, rate_limit=rate_limit)
        client_id = created.client.client_id
        granted = list(created.client.scopes)
    if as_json:
        body: dict[str, Any] = {"client_id": client_id, "programme": programme,
                                "scopes": granted}
        if created.secret is not None:
            body["client_secret"] = created.secret
        click.echo(json.dumps(body))
        return
    click.echo(f"client_id:     {client_id}")
    if created.secret is None:
        click.echo("The client authenticates with private_key_jwt (its keys); it has no "
                   "secret.")
        return
    click.echo(f"client_secret: {created.secret}")
    click.echo("The secret is shown only now; store it safely.")


@clients.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json: bool) -> None:
    """List clients (never their secrets)."""
    with get_db().session_scope() as session:
        rows: list[dict[str, Any]] = [{
            "client_id": c.client_id, "name": c.name,
            "programme": c.programme.code if c.programme else None,
            "scopes": list(c.scopes), "private_key_jwt": bool(c.jwks),
            "disabled": c.disabled_at is not None,
        } for c in service.list_clients(session)]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        state = "disabled" if row["disabled"] else "active"
        click.echo(f"{row['client_id']}  {row['name']}  {row['programme'] or '-'}  "
                   f"{','.join(row['scopes'])}  {state}")


@clients.command("disable")
@click.argument("client_id")
def disable(client_id: str) -> None:
    """Disable a client and revoke its tokens."""
    with _as_click_errors(), get_db().session_scope(write=True) as session:
        revoked = service.disable_client(session, client_id)
    click.echo(f"{client_id} disabled; {revoked} token(s) revoked")


@clients.command("set-keys")
@click.argument("client_id")
@click.option("--jwks", "jwks_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The client's new public JWK set (old and new key while rolling over).")
def set_keys(client_id: str, jwks_path: Path) -> None:
    """Replace the public keys of a client that authenticates with private_key_jwt."""
    try:
        jwks = json.loads(jwks_path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{jwks_path} is not a JSON file: {exc}") from exc
    with _as_click_errors(), get_db().session_scope(write=True) as session:
        client = service.set_keys(session, client_id, jwks)
        count = len(client.jwks["keys"]) if client.jwks else 0
    click.echo(f"{client_id} now has {count} key(s)")


@clients.command("enable")
@click.argument("client_id")
def enable(client_id: str) -> None:
    """Enable a disabled client again (it asks for new tokens)."""
    with _as_click_errors(), get_db().session_scope(write=True) as session:
        service.enable_client(session, client_id)
    click.echo(f"{client_id} enabled")


@clients.command("rotate-secret")
@click.argument("client_id")
@click.option("--overlap", "overlap_seconds", type=click.IntRange(min=0), default=None,
              help="Seconds the old secret is still accepted (default: "
                   "CLIENT_SECRET_OVERLAP_SECONDS, 24 h; 0: refused at once).")
@click.option("--revoke-tokens", is_flag=True,
              help="Also revoke the tokens issued so far (a leaked secret).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def rotate(client_id: str, overlap_seconds: int | None, revoke_tokens: bool,
           as_json: bool) -> None:
    """Give a client a new secret; the old one works until the overlap ends."""
    overlap = (int(current_app.config["CLIENT_SECRET_OVERLAP_SECONDS"])
               if overlap_seconds is None else overlap_seconds)
    with _as_click_errors(), get_db().session_scope(write=True) as session:
        secret = service.rotate_secret(session, client_id, overlap_seconds=overlap,
                                       revoke_tokens=revoke_tokens)
    if as_json:
        click.echo(json.dumps({"client_id": client_id, "client_secret": secret,
                               "previous_secret_accepted_seconds": overlap}))
    else:
        click.echo(f"client_secret: {secret}")
        click.echo(f"The previous secret is accepted for {overlap} s more."
                   if overlap else "The previous secret is refused from now on.")
