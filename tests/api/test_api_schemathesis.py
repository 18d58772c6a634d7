"""Schemathesis against the served OpenAPI document: no 5xx, every response conforms.

Every operation of the spec is exercised on a live server, on SQLite and PostgreSQL: the
partner operations with a partner client holding every partner scope, the admin
operations with an `admin` client. The database holds an operator, a connection with a
run and a quarantined record, so that detail routes with small ids meet real rows; the
clients' quotas are large, as generated batches cost up to 10,000 units each. Bounded:
a few examples an operation (`AEOHUB_SCHEMATHESIS_EXAMPLES` raises it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from hub.sync import connections as conns
from hub.sync import engine
from tests.auth.hubkit import (
    bearer,
    free_port,
    live_server,
    make_client,
    make_operator,
    programmes,
)
from tests.sync.feeds import eu_row, write_feed

CHECKS = (not_a_server_error, response_schema_conformance, status_code_conformance,
          content_type_conformance)
#: Generated batches cost up to 10,000 units each: a quota the run cannot exhaust.
QUOTA = 10**9
MAX_EXAMPLES = int(os.environ.get("AEOHUB_SCHEMATHESIS_EXAMPLES", "6"))


def _runner(operation: Any, headers: dict[str, str], failures: list[str]
            ) -> Callable[[], None]:
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case):  # type: ignore[no-untyped-def]
        response = case.call(headers=headers, timeout=30)
        try:
            case.validate_response(response, checks=CHECKS)
        except Exception as exc:  # collect, report all at the end
            failures.append(f"{case.operation.verbose_name}: {str(exc)[:600]}")
        finally:
            response.close()

    return run  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:jsonschema.RefResolver is deprecated:DeprecationWarning")
def test_schemathesis_against_live_spec(ref_app, committed_db, backend, tmp_path):
    receiver = f"127.0.0.1:{free_port()}"  # subscriptions may name it; nothing listens
    ref_app.config["WEBHOOK_HOSTS_ALLOWED"] = [receiver]
    with committed_db.session_scope(write=True) as session:
        make_operator(session, programmes(session)["EU-AEO"], 1, category="AEOF")
    feed = write_feed(tmp_path / "eu.csv", [eu_row(1), eu_row(2, status="exploded")])
    settings_ = conns.SyncSettings.from_config(ref_app.config)
    with ref_app.app_context():
        from hub import db

        session = db.session()
        connection = conns.add_connection(
            session, settings_, name="eu-csv", connector_type="csv_snapshot",
            programmes=["EU-AEO"], config={"path": str(feed), "programme": "EU-AEO"},
            schedule="interval:1h")
        session.commit()
        connection_id = connection.id
    engine.run_sync(committed_db, settings_, connection_id)

    partner = bearer(committed_db, make_client(
        committed_db, "US-CTPAT", "verify,match,registry:read,changes:read,export,webhooks",
        rate_limit=QUOTA))
    admin = bearer(committed_db, make_client(committed_db, None, "admin", rate_limit=QUOTA))
    with live_server(ref_app) as base:
        schema = schemathesis.from_uri(base + "/api/v1/openapi.json", base_url=base)
        failures: list[str] = []
        exercised: list[str] = []
        for result in schema.get_all_operations():
            operation = result.ok()
            headers = admin if "/admin/" in operation.path else partner
            _runner(operation, headers, failures)()
            exercised.append(operation.verbose_name)
        assert not failures, "\n".join(failures[:10])
    assert len(exercised) >= 45
    assert "POST /api/v1/admin/connections" in exercised
    assert "POST /oauth/token" in exercised

