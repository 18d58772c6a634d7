"""``aeohub identifiers``: check identifiers, list schemes, build MIDs from the shell.

Exit status: 0 valid, 1 invalid (the message names the scheme and the rule broken), 2 usage
errors such as an unknown scheme.
"""

from __future__ import annotations

import json

import click

from hub.identifiers.errors import IdentifierError
from hub.identifiers.mid import explain_mid
from hub.identifiers.schemes import SCHEMES, get_scheme, is_known_scheme


def register(cli: click.Group) -> None:
    """Add the ``identifiers`` command group to ``cli``."""
    cli.add_command(identifiers)


@click.group()
def identifiers() -> None:
    """Validate and normalise operator identifiers (EORI, EU AEO, MID, USCC, ...)."""


@identifiers.command("check")
@click.argument("scheme")
@click.argument("value")
@click.option("--json", "as_json", is_flag=True,
              help="Print the scheme, normalised value and warnings as JSON.")
@click.pass_context
def check_command(ctx: click.Context, scheme: str, value: str, as_json: bool) -> None:
    """Check VALUE as a number of SCHEME and print its normalised form."""
    if not is_known_scheme(scheme):
        raise click.UsageError(
            f"unknown scheme {scheme!r}; known schemes: {', '.join(SCHEMES)}", ctx=ctx
        )
    try:
        result = get_scheme(scheme).validate(value)
    except IdentifierError as exc:
        if as_json:
            click.echo(json.dumps({"scheme": scheme, "valid": False, "error": str(exc)},
                                  ensure_ascii=False))
            ctx.exit(1)
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps({"scheme": scheme, "valid": True, "value": result.value,
                               "warnings": list(result.warnings)}, ensure_ascii=False))
        return
    click.echo(result.value)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)


@identifiers.command("schemes")
@click.option("--json", "as_json", is_flag=True, help="Print the schemes as a JSON array.")
def schemes_command(as_json: bool) -> None:
    """List the identifier schemes with a one-line description each."""
    if as_json:
        click.echo(json.dumps([{"scheme": code, "description": scheme.description}
                               for code, scheme in SCHEMES.items()], ensure_ascii=False))
        return
    width = max(len(code) for code in SCHEMES)
    for code, scheme in SCHEMES.items():
        click.echo(f"{code:<{width}}  {scheme.description}")


@identifiers.command("mid")
@click.option("--name", required=True, help="Manufacturer's name, as on the invoice.")
@click.option("--street", required=True, help="Street line (suite and box included).")
@click.option("--city", required=True, help="City.")
@click.option("--country", required=True, help="ISO 3166 alpha-2 country code, e.g. US.")
@click.option("--province", default=None, help="Canadian province (AB, BC, ON, QC, ...).")
@click.option("--json", "as_json", is_flag=True, help="Print the MID and its parts as JSON.")
def mid_command(
    *,
    name: str, street: str, city: str, country: str, province: str | None, as_json: bool
) -> None:
    """Build the US manufacturer identification code (MID) per 19 CFR 102 appendix.

    The MID is printed alone on the last line.
    """
    try:
        parts = explain_mid(name, street, city, country, province)
    except IdentifierError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(parts.as_dict(), ensure_ascii=False, indent=2))
        return
    for label, part in (
        ("country", parts.country),
        ("name", parts.name),
        ("street", parts.street),
        ("city", parts.city),
    ):
        click.echo(f"{label:<8} {part.value or '-':<7} {part.explanation}")
    click.echo(parts.mid)
