"""`aeohub sim`: generate synthetic registries to files and serve simulated nodes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from hub.sim import formats
from hub.sim.faults import BREACHES, FaultError, Faults
from hub.sim.generator import DEFAULT_OVERLAP, programme_profile
from hub.sim.registry import iter_records
from hub.sim.server import run_node_server

#: The fault names `--faults` accepts (the fields of `Faults`), listed in the help.
FAULT_NAMES = tuple(f.name for f in dataclasses.fields(Faults))


def register(cli: click.Group) -> None:
    """Add the `sim` group to the `aeohub` command."""
    cli.add_command(sim)


@click.group("sim")
def sim() -> None:
    """Synthetic AEO registries and node simulators (demo, tests, benchmarks)."""


@sim.command("generate")
@click.option("--programme", required=True, help="Programme code, e.g. EU-AEO.")
@click.option("--size", default=1000, show_default=True, type=click.IntRange(min=0),
              help="Operators at day 0.")
@click.option("--seed", default=1, show_default=True, type=int, help="Random seed.")
@click.option("--format", "fmt", type=click.Choice(["csv", "ndjson", "xml"]), default="ndjson",
              show_default=True, help="Output format (the node protocol's snapshot formats).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File to write ('-' for standard output).")
@click.option("--day", default=0, show_default=True, type=click.IntRange(min=0),
              help="Apply this many days of churn first.")
@click.option("--overlap", default=DEFAULT_OVERLAP, show_default=True,
              type=click.FloatRange(0, 1), help="Share of operators from the shared universe.")
def generate(programme: str, size: int, seed: int, fmt: str, out: Path, day: int,
             overlap: float) -> None:
    """Stream a synthetic registry to a file (bounded memory, any size)."""
    try:
        programme_profile(programme)
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="--programme") from exc
    records = iter_records(programme, size, seed, day=day, overlap=overlap)
    count = 0
    with click.open_file(str(out), "wb") as handle:
        if fmt == "csv":
            handle.write(formats.csv_header())
        elif fmt == "xml":
            # The count attribute comes first in the element, so count in a first pass.
            total = sum(1 for _ in iter_records(programme, size, seed, day=day,
                                                overlap=overlap)) if day else size
            handle.write(formats.xml_open(programme, total))
        for record in records:
            if fmt == "csv":
                handle.write(formats.csv_line(record))
            elif fmt == "xml":
                handle.write(formats.xml_line(record))
            else:
                handle.write(formats.json_line(record) + b"\n")
            count += 1
        if fmt == "xml":
            handle.write(formats.xml_close())
        elif fmt == "ndjson":
            handle.write(formats.json_line({"complete": True, "count": count}) + b"\n")
    if str(out) != "-":
        click.echo(f"wrote {count} {programme} operators to {out} ({fmt})", err=True)


@sim.command("serve")
@click.option("--programme", "programmes", multiple=True, required=True,
              help="Programme to serve (repeat for several).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8700, show_default=True, type=int, help="Port (0: any free).")
@click.option("--size", default=1000, show_default=True, type=click.IntRange(min=0),
              help="Operators per programme.")
@click.option("--seed", default=1, show_default=True, type=int, help="Random seed.")
@click.option("--day", default=0, show_default=True, type=click.IntRange(min=0),
              help="Days of churn before serving.")
@click.option("--token", default="sim-token", show_default=True,
              help="Bearer token clients must send ('' for none).")
@click.option("--faults", "faults_spec", default="",
              help="Faults as JSON or a comma list, e.g. \"latency_ms=100,error_rate=0.1\". "
                   f"Faults: {', '.join(FAULT_NAMES)}. broken_protocol takes "
                   f"'true' (all) or names joined by '+': {', '.join(BREACHES)}.")
def serve(programmes: tuple[str, ...], host: str, port: int, size: int, seed: int, day: int,
          token: str, faults_spec: str) -> None:
    """Serve simulated registries over the node protocol until Ctrl+C."""
    for code in programmes:
        try:
            programme_profile(code)
        except KeyError as exc:
            raise click.BadParameter(str(exc.args[0]), param_hint="--programme") from exc
    try:
        faults = Faults.parse(faults_spec)
    except FaultError as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from exc
    run_node_server(list(programmes), host=host, port=port, size=size, seed=seed, day=day,
                    token=token or None, faults=faults, echo=click.echo)
