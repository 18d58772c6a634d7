"""`aeohub users create|list|disable`: dashboard accounts."""

from __future__ import annotations

import sys

import click

from hub import db
from hub.errors import HubError
from hub.web import users


def register(cli: click.Group) -> None:
    cli.add_command(users_group)


def _fail(exc: HubError) -> click.ClickException:
    lines = [exc.detail] + [f"  {f}: {', '.join(m)}" for f, m in exc.fields.items()]
    return click.ClickException("\n".join(lines))


@click.group("users")
def users_group() -> None:
    """Dashboard users: create, list, disable."""


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
        session.commit()
    except HubError as exc:
        session.rollback()
        raise _fail(exc) from exc
    role = "hub administrator" if user.hub_admin else f"staff of {administration}"
    click.echo(f"user {user.username} created ({role})")


@users_group.command("list")
def users_list() -> None:
    """Every dashboard user with its role."""
    for user in users.list_users(db.session()):
        role = "hub-admin" if user.hub_admin else (
            user.administration.code if user.administration else "-")
        state = "disabled" if user.disabled_at else "active"
        click.echo(f"{user.username:<30} {role:<12} {state}")


@users_group.command("disable")
@click.argument("username")
def users_disable(username: str) -> None:
    """Stop USERNAME from signing in."""
    session = db.session()
    try:
        users.disable_user(session, username)
        session.commit()
    except HubError as exc:
        session.rollback()
        raise _fail(exc) from exc
    click.echo(f"user {username} disabled")
