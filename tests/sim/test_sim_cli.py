"""`aeohub sim generate` and `aeohub sim serve` options, through click's CliRunner."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import click
from click.testing import CliRunner

from hub.sim.cli import register
from hub.sim.registry import iter_records


def _group() -> click.Group:
    group = click.Group("aeohub")
    register(group)
    return group


def test_generate_ndjson_matches_the_generator(tmp_path: Path) -> None:
    out = tmp_path / "eu.ndjson"
    result = CliRunner().invoke(_group(), ["sim", "generate", "--programme", "EU-AEO",
                                           "--size", "50", "--seed", "4", "--format", "ndjson",
                                           "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[-1]) == {"complete": True, "count": 50}
    assert [json.loads(line) for line in lines[:-1]] == list(iter_records("EU-AEO", 50, 4))


def test_generate_csv_and_xml_with_churn(tmp_path: Path) -> None:
    runner = CliRunner()
    for fmt in ("csv", "xml"):
        out = tmp_path / f"cn.{fmt}"
        result = runner.invoke(_group(), ["sim", "generate", "--programme", "CN-AEO", "--size",
                                          "400", "--seed", "2", "--format", fmt, "--out",
                                          str(out), "--day", "30"])
        assert result.exit_code == 0, result.output
    expected = [r["trader_id"] for r in iter_records("CN-AEO", 400, 2, day=30)]
    with (tmp_path / "cn.csv").open(encoding="utf-8", newline="") as handle:
        assert [row["trader_id"] for row in csv.DictReader(handle)] == expected
    root = ET.parse(tmp_path / "cn.xml").getroot()
    assert root.get("count") == str(len(expected))
    assert len(root) == len(expected)


def test_generate_rejects_unknown_programme(tmp_path: Path) -> None:
    result = CliRunner().invoke(_group(), ["sim", "generate", "--programme", "XX-NONE",
                                           "--out", str(tmp_path / "x.csv")])
    assert result.exit_code == 2 and "unknown programme" in result.output


def test_serve_rejects_bad_faults() -> None:
    result = CliRunner().invoke(_group(), ["sim", "serve", "--programme", "EU-AEO",
                                           "--faults", "explode=1"])
    assert result.exit_code == 2 and "unknown fault" in result.output
