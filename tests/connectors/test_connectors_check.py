"""`aeohub connectors check --sample N`: the whole validation on a sample, nothing written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from hub import db
from hub.arrangements.service import load_reference_data
from hub.registry.models import Operator
from hub.sync.models import QuarantinedRecord
from tests.connectors.examples import install
from tests.sync.feeds import eu_row, write_feed


@pytest.fixture
def hub_runner(app: Any) -> Any:
    with app.app_context():
        load_reference_data(db.session())
        db.session().commit()
    return app.test_cli_runner()


def check(runner: Any, connector: str, config: dict[str, Any], *extra: str) -> Any:
    return runner.invoke(args=["connectors", "check", connector, "--json", "--config",
                               json.dumps(config), *extra])


def test_reports_what_a_sync_would_do(app: Any, hub_runner: Any) -> None:
    example = install("de_zoll_latin1", Path(app.config["IMPORT_DIR"]))
    result = check(hub_runner, "csv_snapshot", example["config"])
    assert result.exit_code == 0, result.output
    sample = json.loads(result.output)["sample"]
    assert (sample["read"], sample["would_validate"], sample["rejected"]) == (4, 3, 1)
    # the unmapped word is also no status the hub knows, for the record and its category
    assert sample["reasons"] == {"format": 1, "invalid_status": 2}
    (problem,) = sample["problems"]["format"]
    assert problem["position"] == "line 5"
    assert "status 'vorläufig' is not in values.status" in problem["reason"]
    assert sample["unmapped"] == {"status": {"vorläufig": 1}}
    assert sample["unread"] == ["Sachbearbeiter"]
    # nothing was written
    with app.app_context():
        session = db.session()
        assert session.scalar(select(func.count()).select_from(Operator)) == 0
        assert session.scalar(select(func.count()).select_from(QuarantinedRecord)) == 0
    text = hub_runner.invoke(args=["connectors", "check", "csv_snapshot", "--config",
                                   json.dumps(example["config"])])
    assert "would validate 3" in text.output
    assert "missing from values.status: 'vorläufig' (1)" in text.output
    assert "no setting reads: Sachbearbeiter" in text.output


def test_fails_when_no_record_would_validate(app: Any, hub_runner: Any) -> None:
    example = install("de_zoll_latin1", Path(app.config["IMPORT_DIR"]))
    config = {**example["config"], "values": {**example["config"]["values"],
                                              "status": {"aktiv": "valid"}}}
    result = check(hub_runner, "csv_snapshot", config)
    assert result.exit_code == 1
    sample = json.loads(result.output)["sample"]
    assert sample["would_validate"] == 0
    assert sample["unmapped"]["status"] == {"gültig": 2, "ausgesetzt": 1, "vorläufig": 1}
    assert len(sample["problems"]["format"]) == 3  # the first few of each reason


def test_sample_size_and_unknown_programme(app: Any, hub_runner: Any) -> None:
    example = install("de_zoll_latin1", Path(app.config["IMPORT_DIR"]))
    result = check(hub_runner, "csv_snapshot", {**example["config"], "batch_size": 1},
                   "--sample", "2")
    assert json.loads(result.output)["sample"]["read"] == 2
    result = check(hub_runner, "csv_snapshot", {**example["config"], "programme": "XX-AEO"})
    assert result.exit_code == 1
    assert json.loads(result.output)["sample"]["reasons"] == {"unknown_programme": 4}
    probe_only = check(hub_runner, "csv_snapshot", example["config"], "--sample", "0")
    assert probe_only.exit_code == 0 and "sample" not in json.loads(probe_only.output)


def test_the_new_connectors_are_listed_with_their_settings(hub_runner: Any) -> None:
    result = hub_runner.invoke(args=["connectors", "list"])
    assert result.exit_code == 0
    assert "xlsx_snapshot" in result.output and "sql_query" in result.output
    assert "password (secret)" in result.output and "sheet_position" in result.output
    schemas = json.loads(hub_runner.invoke(args=["connectors", "list", "--json"]).output)
    assert schemas["sql_query"]["properties"]["password"]["secret"] is True
    assert "values" in schemas["xlsx_snapshot"]["properties"]


def test_a_list_without_identifiers_is_read_with_derived_keys(app: Any,
                                                               hub_runner: Any) -> None:
    # A public list that carries no identifier and no authorisation number validates
    # with its derived, marked keys.
    example = install("eu_public_list", Path(app.config["IMPORT_DIR"]))
    result = check(hub_runner, "csv_snapshot", example["config"])
    sample = json.loads(result.output)["sample"]
    assert (sample["read"], sample["would_validate"]) == (3, 3), sample
    assert result.exit_code == 0


def test_reports_tiers_missing_from_the_tier_map(app: Any, hub_runner: Any) -> None:
    def row(n: int, tier: str) -> dict[str, str]:
        number = f"{n:08d}"
        return eu_row(n, programme="US-CTPAT", authorisation_number=number,
                      trader_id_scheme="US_CTPAT", trader_id=number, country="US",
                      categories=f"importer:valid:2015-03-01:{tier}",
                      issuing_authority="CBP")

    write_feed(Path(app.config["IMPORT_DIR"]) / "ctpat.csv",
               [row(1, "Tier II"), row(2, "stufe 3"), row(3, "Tier IV"), row(4, "Tier IV")])
    config = {"path": "ctpat.csv", "programme": "US-CTPAT",
              "values": {"tier": {"Tier I": "tier1", "Tier II": "tier2", "Stufe 3": "tier3"}}}
    result = check(hub_runner, "csv_snapshot", config)
    assert result.exit_code == 0, result.output
    sample = json.loads(result.output)["sample"]
    assert (sample["read"], sample["would_validate"], sample["rejected"]) == (4, 2, 2)
    # the unmapped word is no tier of the programme either: quarantined for both reasons
    assert sample["reasons"] == {"format": 2, "unknown_tier": 2}
    assert sample["unmapped"] == {"tier": {"Tier IV": 2}}
    assert "tier 'Tier IV' is not in values.tier" in sample["problems"]["format"][0]["reason"]
