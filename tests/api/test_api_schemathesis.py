"""Schemathesis against the served OpenAPI document: no 5xx, every response conforms."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.auth.hubkit import bearer, live_server, make_client, make_operator, programmes


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:jsonschema.RefResolver is deprecated:DeprecationWarning")
def test_schemathesis_against_live_spec(ref_app, committed_db, backend):
    if backend != "sqlite":
        pytest.skip("one backend is enough for the contract")
    with committed_db.session_scope(write=True) as session:
        make_operator(session, programmes(session)["EU-AEO"], 1, category="AEOF")
    headers = bearer(committed_db, make_client(committed_db, "US-CTPAT",
                                               "verify,match,registry:read,changes:read,export"))
    with live_server(ref_app) as base:
        schema = schemathesis.from_uri(base + "/api/v1/openapi.json", base_url=base)
        failures: list[str] = []
        unsupported: list[str] = []
        checks = (not_a_server_error, response_schema_conformance, status_code_conformance,
                  content_type_conformance)
        for result in schema.get_all_operations():
            operation = result.ok()
            if "/admin/" in operation.path:
                continue

            @settings(max_examples=8, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy())
            def run(case):  # type: ignore[no-untyped-def]
                response = case.call(headers=headers, timeout=30)
                try:
                    case.validate_response(response, checks=checks)
                except Exception as exc:  # collect, report all at the end
                    failures.append(f"{case.operation.verbose_name}: {str(exc)[:300]}")
                finally:
                    response.close()

            try:
                run()
            except AttributeError as exc:
                # hypothesis-jsonschema 0.23 against hypothesis 6.170 fails to build some
                # strategies ("'many' object has no attribute 'more'"): an incompatibility of
                # the installed test tools, not of the API. Those operations are listed.
                if "more" not in str(exc):
                    raise
                unsupported.append(operation.verbose_name)
        assert not failures, "\n".join(failures[:10])
        print("schemathesis could not generate cases for:", unsupported)
