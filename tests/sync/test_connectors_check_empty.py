"""`aeohub connectors check` fails when the source gives no record to sample: a check
that read nothing cannot say that a sync would store anything. `--sample 0` only probes
the source, and says so; a negative sample is a usage error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import Result
from flask import Flask

from tests.sync.feeds import eu_row, write_feed


def check(app: Flask, name: str, *extra: str) -> Result:
    config = {"path": name, "programme": "EU-AEO"}
    return app.test_cli_runner().invoke(args=["connectors", "check", "csv_snapshot",
                                              "--config", json.dumps(config), *extra])


def test_a_header_only_file_fails_the_check(hub_app: Flask) -> None:
    write_feed(Path(hub_app.config["IMPORT_DIR"]) / "empty.csv", [])
    result = check(hub_app, "empty.csv")
    assert result.exit_code == 1, result.output
    assert "sample: read 0, would validate 0" in result.output
    assert "check failed: the source gave no record to sample" in result.output
    as_json = check(hub_app, "empty.csv", "--json")
    assert as_json.exit_code == 1, as_json.output
    found: dict[str, Any] = json.loads(as_json.output)  # still one JSON document
    assert found["format_ok"] is True
    assert (found["sample"]["read"], found["sample"]["would_validate"]) == (0, 0)


def test_records_that_validate_pass(hub_app: Flask) -> None:
    write_feed(Path(hub_app.config["IMPORT_DIR"]) / "two.csv", [eu_row(1), eu_row(2)])
    result = check(hub_app, "two.csv")
    assert result.exit_code == 0, result.output
    assert "sample: read 2, would validate 2" in result.output
    assert "check failed" not in result.output


def test_sample_zero_only_probes_and_a_negative_sample_is_a_usage_error(
        hub_app: Flask) -> None:
    write_feed(Path(hub_app.config["IMPORT_DIR"]) / "empty.csv", [])
    probe = check(hub_app, "empty.csv", "--sample", "0")
    assert probe.exit_code == 0, probe.output
    assert "sample: none read (--sample 0 only probes the source)" in probe.output
    negative = check(hub_app, "empty.csv", "--sample", "-1")
    assert negative.exit_code == 2, negative.output
    assert "Invalid value for '--sample'" in negative.output
