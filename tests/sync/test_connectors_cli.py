"""`aeohub connectors list|check` against a live simulated node."""

from __future__ import annotations

import json

from hub import db
from hub.arrangements.service import load_reference_data
from hub.sim.server import NodeServer


def test_list_shows_builtins_and_marks_secrets(runner):
    result = runner.invoke(args=["connectors", "list"])
    assert result.exit_code == 0, result.output
    for name in ("aeo_node", "csv_snapshot", "xml_snapshot"):
        assert name in result.output
    assert "token (secret)" in result.output
    schemas = json.loads(runner.invoke(args=["connectors", "list", "--json"]).output)
    assert schemas["aeo_node"]["properties"]["token"]["secret"] is True


def test_check_reports_and_never_shows_the_token(app, runner):
    with app.app_context():  # the sampled records are validated against the programme
        load_reference_data(db.session())
        db.session().commit()
    with NodeServer(["EU-AEO"], size=20, seed=1, token="right-token") as node:
        good = runner.invoke(args=["connectors", "check", "aeo_node", "--json", "--config",
                                   json.dumps({"base_url": node.url, "token": "right-token",
                                               "programme": "EU-AEO"})])
        assert good.exit_code == 0, good.output
        assert json.loads(good.output)["reachable"] is True
        assert json.loads(good.output)["sample"]["would_validate"] == 20
        assert "right-token" not in good.output
        bad = runner.invoke(args=["connectors", "check", "aeo_node", "--config",
                                  json.dumps({"base_url": node.url, "token": "wrong-token",
                                              "programme": "EU-AEO"})])
        assert bad.exit_code == 1
        assert "authenticated: False" in bad.output and "wrong-token" not in bad.output
    invalid = runner.invoke(args=["connectors", "check", "aeo_node", "--config",
                                  json.dumps({"base_url": "nope", "token": "t"})])
    assert invalid.exit_code == 1 and "base_url" in invalid.output
