"""`aeohub connections edit --config`: nested settings merge (``--replace`` replaces), the
difference is printed with secrets masked; paths stay inside the import directory."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from hub import db
from hub.arrangements.service import load_reference_data
from hub.sync import connections as conns
from tests.connectors.examples import install


@pytest.fixture
def hub_runner(app: Any) -> Any:
    with app.app_context():
        load_reference_data(db.session())
        db.session().commit()
    return app.test_cli_runner()


def add(runner: Any, name: str, connector: str, config: dict[str, Any]) -> Any:
    return runner.invoke(args=["connections", "add", "--name", name, "--type", connector,
                               "--programme", "EU-AEO", "--schedule", "interval:1d",
                               "--config", json.dumps(config)])


def stored(app: Any, name: str) -> dict[str, Any]:
    with app.app_context():
        connection = conns.get_connection(db.session(), name)
        return conns.full_config(connection, conns.SyncSettings.from_config(app.config))


def test_nested_settings_merge_and_the_difference_is_printed(app: Any,
                                                            hub_runner: Any) -> None:
    example = install("nl_registry", Path(app.config["IMPORT_DIR"]))
    assert add(hub_runner, "nl", "xml_snapshot", example["config"]).exit_code == 0
    result = hub_runner.invoke(args=["connections", "edit", "nl", "--config", json.dumps(
        {"elements": {"city": "Adres/@woonplaats"}, "values": {"status": {"vervallen":
                                                                           "expired"}}})])
    assert result.exit_code == 0, result.output
    config = stored(app, "nl")
    # one element name changed, the others kept
    assert config["elements"] == {**example["config"]["elements"], "city": "Adres/@woonplaats"}
    assert config["values"]["status"] == {**example["config"]["values"]["status"],
                                          "vervallen": "expired"}
    assert '~ elements.city: "Adres/@plaats" -> "Adres/@woonplaats"' in result.output
    assert '+ values.status.vervallen: "expired"' in result.output
    # --replace replaces the whole configuration
    replaced = {"path": "nl_registry.xml", "programme": "EU-AEO", "namespace": ""}
    result = hub_runner.invoke(args=["connections", "edit", "nl", "--replace", "--config",
                                     json.dumps(replaced)])
    assert result.exit_code == 0, result.output
    assert stored(app, "nl") == replaced
    assert "- elements:" in result.output and '~ namespace: "urn:example:nl:aeo" -> ""' \
        in result.output


def test_secrets_are_masked_in_the_difference(app: Any, hub_runner: Any) -> None:
    app.config["NODE_HOSTS_ALLOWED"] = ["127.0.0.1"]
    config = {"url": "postgresql+psycopg://reader@127.0.0.1:5432/registry",
              "password": "first-secret", "view": "aeo_register_v", "programme": "EU-AEO"}
    assert add(hub_runner, "fr", "sql_query", config).exit_code == 0
    result = hub_runner.invoke(args=["connections", "edit", "fr", "--config", json.dumps(
        {"password": "second-secret", "batch_size": 100})])
    assert result.exit_code == 0, result.output
    assert "~ password: ******** -> ********" in result.output
    assert "+ batch_size: 100" in result.output
    assert "secret" not in result.output.replace("********", "")
    assert stored(app, "fr")["password"] == "second-secret"
    # replacing the configuration keeps the secret nobody can read back
    plain = {k: v for k, v in config.items() if k != "password"}
    result = hub_runner.invoke(args=["connections", "edit", "fr", "--replace", "--config",
                                     json.dumps(plain)])
    assert result.exit_code == 0, result.output
    assert stored(app, "fr") == {**plain, "password": "second-secret"}
    assert "- batch_size: 100" in result.output


def test_relative_paths_resolve_under_the_import_dir(app: Any, hub_runner: Any,
                                                     tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import_dir = Path(app.config["IMPORT_DIR"])
    example = install("de_zoll_latin1", import_dir)
    elsewhere = tmp_path.parent / f"{tmp_path.name}-cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # never the working directory
    assert add(hub_runner, "de", "csv_snapshot", example["config"]).exit_code == 0
    run = hub_runner.invoke(args=["sync", "run", "de", "--json"])
    summary = json.loads(run.output.strip().splitlines()[-1])
    assert (summary["status"], summary["created"]) == ("succeeded", 3), run.output
    # the run's summary names the column that nothing reads
    assert summary["unread"] == ["Sachbearbeiter"]
    again = hub_runner.invoke(args=["sync", "run", "de"])
    assert "columns with data that no setting reads: Sachbearbeiter" in again.output


@pytest.mark.parametrize("path", ["../outside.csv", "sub/../../outside.csv", "link.csv",
                                  "/etc/passwd"])
def test_no_path_leaves_the_import_dir(app: Any, hub_runner: Any, path: str) -> None:
    import_dir = Path(app.config["IMPORT_DIR"])
    example = install("de_zoll_latin1", import_dir)
    outside = import_dir.parent / "outside.csv"
    outside.write_bytes((import_dir / "de_zoll_latin1.csv").read_bytes())
    if not (import_dir / "link.csv").exists():
        os.symlink(outside, import_dir / "link.csv")
    result = add(hub_runner, "de", "csv_snapshot", {**example["config"], "path": path})
    assert result.exit_code != 0
    assert "outside the import directory" in result.output
    assert add(hub_runner, "de", "csv_snapshot", example["config"]).exit_code == 0
    edit = hub_runner.invoke(args=["connections", "edit", "de", "--config",
                                   json.dumps({"path": path})])
    assert edit.exit_code != 0 and "outside the import directory" in edit.output
    assert stored(app, "de")["path"] == "de_zoll_latin1.csv"
