"""`aeohub users create|list|disable|enable|set-password|sign-out`: dashboard accounts."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import click
from sqlalchemy.orm import Session

from hub import db
from hub.errors import HubError
from hub.web import sessions, users


def register(cli: click.Group) -> None:
    cli.add_command(users_group)


def _fail(exc: HubError) -> click.ClickException:
    lines = [exc.detail] + [f"  {f}: {', '.join(m)}" for f, m in exc.fields.items()]
    return click.ClickException("\n".join(lines))


@click.group("users")
def users_group() -> None:
    """Dashboard users: create, list, disable and enable, change passwords, end sessions."""


@users_group.command("create")
@click.argument("username")
@click.option("--administration", help="Administration code whose staff the user belongs to.")
@click.option("--hub-admin", is_flag=True, help="A hub administrator (sees every administration).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_create(username: str, administration: str | None, hub_admin: bool,
                 password_stdin: bool) -> None:
    """Create USERNAME (the password is prompted for unless --password-stdin)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    session = db.session()
    try:
        user = users.create_user(session, username, password, administration=administration,
                                 hub_admin=hub_admin)
    except HubError as exc:
        raise _fail(exc) from exc
    role = "hub administrator" if user.hub_admin else f"staff of {administration}"
    click.echo(f"user {user.username} created ({role})")


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the users as a JSON array.")
def users_list(as_json: bool) -> None:
    """Every dashboard user with its role."""
    rows = [{"username": user.username, "hub_admin": user.hub_admin,
             "administration": user.administration.code if user.administration else None,
             "disabled": user.disabled_at is not None}
            for user in users.list_users(db.session())]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        role = "hub-admin" if row["hub_admin"] else (row["administration"] or "-")
        click.echo(f"{row['username']:<30} {role:<12} "
                   f"{'disabled' if row['disabled'] else 'active'}")


def _set_enabled(username: str, change: Callable[[Session, str], object], done: str) -> None:
    session = db.session()
    try:
        change(session, username)
    except HubError as exc:
        raise _fail(exc) from exc
    click.echo(f"user {username} {done}")


@users_group.command("disable")
@click.argument("username")
def users_disable(username: str) -> None:
    """Stop USERNAME from signing in (their open sessions end now)."""
    _set_enabled(username, users.disable_user, "disabled")


@users_group.command("enable")
@click.argument("username")
def users_enable(username: str) -> None:
    """Let a disabled USERNAME sign in again."""
    _set_enabled(username, users.enable_user, "enabled")


@users_group.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_set_password(username: str, password_stdin: bool) -> None:
    """Give USERNAME a new password; every session they have open ends."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    session = db.session()
    try:
        users.set_password(session, username, password)
    except HubError as exc:
        raise _fail(exc) from exc
    click.echo(f"password of {username} changed; their sessions are ended")


@users_group.command("sign-out")
@click.argument("username")
def users_sign_out(username: str) -> None:
    """End every dashboard session of USERNAME (they must sign in again)."""
    session = db.session()
    try:
        ended = sessions.end_all(session, users.get_user(session, username).id)
    except HubError as exc:
        raise _fail(exc) from exc
    click.echo(f"{ended} session(s) of {username} ended")
