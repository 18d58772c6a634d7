"""`aeohub connectors list|check`: the installed connector plugins, and a trial of one.

`check` probes the source (reachable, authenticated, format as expected), then reads a
sample of its records and runs the hub's whole validation on them without writing
anything: it says how many would validate, the first problems of each reason, the values
missing from the value maps and the columns holding data that no setting reads. A source
whose header is right but whose records would not validate fails the check, and so does
one that gives no record to sample (a header-only file, an empty view): the check cannot
say that a sync would store anything. `--sample 0` only probes the source.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import click
from flask import current_app
from sqlalchemy import select

from connectors.base import (
    Batch,
    ConfigError,
    Connector,
    ConnectorError,
    redact,
)
from connectors.catalogue import available_connectors, build_connector, config_json_schema
from connectors.mapping import unmapped_value
from hub import db
from hub.registry.models import Programme
from hub.sync.connections import SyncSettings, connector_context
from hub.sync.validate import ProgrammeRules, Rejection, validate

#: Problems shown per reason code.
SHOWN_PER_REASON = 3


def register(cli: click.Group) -> None:
    cli.add_command(connectors_group)


@click.group("connectors")
def connectors_group() -> None:
    """Connector plugins (entry-point group aeohub.connectors)."""


@connectors_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Each connector with its config schema.")
def connectors_list(as_json: bool) -> None:
    """Installed connectors; a broken plugin is logged and left out."""
    found = available_connectors()
    if as_json:
        click.echo(json.dumps({name: config_json_schema(cls) for name, cls in found.items()}))
        return
    for name, cls in sorted(found.items()):
        schema = config_json_schema(cls)
        fields = ", ".join(
            f"{key}{'*' if key in schema['required'] else ''}"
            f"{' (secret)' if spec.get('secret') else ''}"
            for key, spec in schema["properties"].items())
        click.echo(f"{name:<14} {cls.title}\n{'':<14} config: {fields}")


def _batches(connector: Connector, sample: int) -> Iterator[Batch]:
    """The connector's batches until ``sample`` records were read; the read is closed
    (files and cursors released) when the sample is complete."""
    reader = connector.read(None)
    read = 0
    try:
        for batch in reader:
            yield batch
            read += len(batch.records)
            if read >= sample:
                return
    finally:
        close = getattr(reader, "close", None)
        if close is not None:
            close()


def trial(connector: Connector, sample: int) -> dict[str, Any]:
    """Read up to ``sample`` records and validate them as a sync would, writing nothing."""
    session = db.session()
    rules: dict[str | None, ProgrammeRules | None] = {}
    read = valid = 0
    reasons: Counter[str] = Counter()
    problems: dict[str, list[dict[str, Any]]] = {}
    unmapped: dict[str, Counter[str]] = {}
    unread: list[str] = []
    default_programme = connector.config.get("programme")
    for batch in _batches(connector, sample):
        unread = list(batch.state.get("unread") or unread)
        for record in batch.records:
            if read >= sample:
                break
            read += 1
            code = record.programme or default_programme
            if code not in rules:
                row = session.scalar(select(Programme).where(Programme.code == code)) \
                    if code else None
                rules[code] = ProgrammeRules.of(row) if row is not None else None
            programme_rules = rules[code]
            if programme_rules is None:
                found: list[dict[str, str]] = [{
                    "code": "unknown_programme", "field": "programme",
                    "reason": f"{code!r} is not a programme of this hub" if code
                    else "the record names no programme and the connection sets none"}]
            else:
                outcome = validate(record, programme_rules)
                if not isinstance(outcome, Rejection):
                    valid += 1
                    continue
                found = outcome.reasons
            for reason in found:
                reasons[reason["code"]] += 1
                shown = problems.setdefault(reason["code"], [])
                if len(shown) < SHOWN_PER_REASON:
                    shown.append({"position": record.position, **reason})
                missing = unmapped_value(reason["reason"])
                if missing is not None:
                    unmapped.setdefault(missing[0], Counter())[missing[1]] += 1
    return {
        "read": read,
        "would_validate": valid,
        "rejected": read - valid,
        "reasons": dict(reasons.most_common()),
        "problems": problems,
        "unmapped": {name: dict(counts.most_common()) for name, counts in unmapped.items()},
        "unread": unread,
    }


def _print_trial(found: dict[str, Any]) -> None:
    click.echo(f"sample: read {found['read']}, would validate {found['would_validate']}, "
               f"rejected {found['rejected']}")
    for code, count in found["reasons"].items():
        click.echo(f"  {code}: {count}")
        for problem in found["problems"].get(code, []):
            click.echo(f"    {problem['position'] or '?'}: {problem['field']}: "
                       f"{problem['reason']}")
    for name, values in found["unmapped"].items():
        listed = ", ".join(f"{value!r} ({count})" for value, count in values.items())
        click.echo(f"missing from values.{name}: {listed}")
    if found["unread"]:
        click.echo(f"columns with data that no setting reads: {', '.join(found['unread'])}")


def _print_findings(shown: dict[str, Any], probed_ok: bool, verdict: str) -> None:
    """The findings as text, ending with why the check failed (if it did)."""
    click.echo(f"reachable: {shown['reachable']}, authenticated: {shown['authenticated']}, "
               f"format as expected: {shown['format_ok']}")
    if shown["reason"]:
        click.echo(f"reason: {shown['reason']}")
    sample = shown.get("sample")
    if sample is None and probed_ok:
        click.echo("sample: none read (--sample 0 only probes the source)")
    elif sample is not None and "error" not in sample:  # an error: the verdict says it
        _print_trial(sample)
    if verdict:
        click.echo(f"check failed: {verdict}")


def _sample_verdict(found: dict[str, Any]) -> str:
    """Why a sample fails the check ("" when it passes): it held no record, or none of
    its records would validate, or it could not be read."""
    if "error" in found:
        return f"reading the sample failed: {found['error']}"
    if found["read"] == 0:
        return ("the source gave no record to sample (only a header, or no rows), so no "
                "record would validate")
    if found["would_validate"] == 0:
        return f"none of the {found['read']} sampled records would validate"
    return ""


@connectors_group.command("check")
@click.argument("connector_type")
@click.option("--config", "config_text", required=True, help="Connector config as JSON.")
@click.option("--sample", type=click.IntRange(min=0), default=200, show_default=True,
              help="Records to read and validate (0: only probe the source, validating "
                   "nothing).")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def connectors_check(connector_type: str, config_text: str, sample: int,
                     as_json: bool) -> None:
    """Probe a source with CONNECTOR_TYPE, then validate a sample of its records.

    Exits 1 when the source fails its probe, when it gives no record to sample, or when
    none of the sampled records would validate."""
    if connector_type not in available_connectors():
        raise click.BadParameter(f"no connector named {connector_type!r}; available: "
                                 f"{', '.join(sorted(available_connectors()))}",
                                 param_hint="CONNECTOR_TYPE")
    try:
        config = json.loads(config_text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--config") from exc
    if not isinstance(config, dict):
        raise click.BadParameter("expected a JSON object", param_hint="--config")
    # a connection's host policy, without an administration's hosts
    context = connector_context(SyncSettings.from_config(current_app.config))
    try:
        connector = build_connector(connector_type, config, context)
    except ConfigError as exc:
        lines = [str(exc)] + [f"  {f}: {', '.join(m)}" for f, m in exc.fields.items()]
        raise click.ClickException("\n".join(lines)) from exc
    result = connector.check()
    shown: dict[str, Any] = {**asdict(result),
                             "config": redact(connector.config, connector.config_schema)}
    verdict = ""
    if result.ok and sample:
        try:
            shown["sample"] = trial(connector, sample)
        except ConnectorError as exc:
            shown["sample"] = {"error": str(exc)}
        verdict = _sample_verdict(shown["sample"])
    if as_json:
        click.echo(json.dumps(shown, default=str))
    else:
        _print_findings(shown, result.ok, verdict)
    if not result.ok or verdict:
        raise SystemExit(1)
