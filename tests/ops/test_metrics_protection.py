"""`/metrics` with METRICS_TOKEN configured answers only a scrape that carries it."""

from __future__ import annotations

import pytest

from hub.settings import ConfigurationError, load_config

TOKEN = "m" * 40


def test_metrics_need_the_configured_bearer_token(app):
    client = app.test_client()
    assert client.get("/metrics").status_code == 200  # not configured: open
    app.config["METRICS_TOKEN"] = TOKEN
    for headers in ({}, {"Authorization": "Bearer " + "x" * 40},
                    {"Authorization": f"Basic {TOKEN}"}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert refused.mimetype == "application/problem+json"
        assert b"aeohub_http_requests" not in refused.data
    scraped = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert scraped.status_code == 200
    assert b"aeohub_http_requests" in scraped.data


def test_a_short_metrics_token_is_a_configuration_problem(tmp_path):
    with pytest.raises(ConfigurationError, match="AEOHUB_METRICS_TOKEN: at least 32"):
        load_config("testing", instance_path=tmp_path,
                    environ={"AEOHUB_METRICS_TOKEN": "short"})
