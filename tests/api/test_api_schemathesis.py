"""Schemathesis against the served OpenAPI document: no 5xx, every answer conforms.

Every operation of the spec is exercised on a live server, on SQLite and PostgreSQL: the
partner operations with a partner client holding every partner scope, the admin
operations with an `admin` client. Two phases, both with every check schemathesis has
(`ALL_CHECKS`: server errors, status codes, content types, headers, schemas, ignored
auth, invalid data refused, where a 413 or 429 counts as refusing too):

- operation by operation, a few valid requests each (`AEOHUB_SCHEMATHESIS_EXAMPLES`
  raises it), then half as many invalid ones (negative data), which must get a 4xx;
- stateful: a state machine built from the document's OpenAPI links (create a webhook,
  then read, change, ping, rotate, delete it; list operators, then read one; create a
  connection, then read, edit and sync it), with the stateful checks too (a deleted
  resource stays gone, a created one is available).

The database holds an operator, a connection with a run and a quarantined record, so
that detail routes with small ids meet real rows; the clients' quotas are large, as
generated batches cost up to 10,000 units each. `tests/benchmarks/bench_schemathesis.py`
runs both phases larger.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.stateful import run_state_machine_as_test
from schemathesis import DataGenerationMethod
from schemathesis.checks import ALL_CHECKS
from schemathesis.exceptions import SkipTest
from schemathesis.internal.checks import CheckConfig, NegativeDataRejectionConfig
from schemathesis.specs.openapi.checks import (
    ensure_resource_availability,
    negative_data_rejection,
    use_after_free,
)

from hub import db
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

#: Generated batches cost up to 10,000 units each: a quota the run cannot exhaust.
QUOTA = 10**9
MAX_EXAMPLES = int(os.environ.get("AEOHUB_SCHEMATHESIS_EXAMPLES", "6"))
#: Invalid requests an operation (negative data: each must be refused with a 4xx).
NEGATIVE_EXAMPLES = max(1, MAX_EXAMPLES // 2)
#: Stateful phase at smoke size: scenarios, and steps in each.
STATEFUL_SCENARIOS, STATEFUL_STEPS = 12, 8


def resource_available(ctx: Any, response: Any, case: Any) -> bool | None:
    """`ensure_resource_availability`, but a 409 is not a missing resource: it names a
    conflict with the resource's state (a connection created disabled cannot sync)."""
    if response.status_code == 409:
        return None
    return ensure_resource_availability(ctx, response, case)


STATEFUL_CHECKS = (use_after_free, resource_available)


def _repeated(value: Any) -> bool:
    """A query value sent as a member given more than once (which the hub refuses)."""
    return isinstance(value, list) and len(value) >= 2 and None not in value


def negative_data_refused(ctx: Any, response: Any, case: Any) -> bool | None:
    """`negative_data_rejection`, with 413 and 429 counted as refusals too (the OAuth
    endpoints hold an address back after many failed client authentications).

    Judged where the invalid data reaches the hub as generated: JSON bodies, paths, and
    a query with a repeated member. Other invalid queries and forms are still sent (no
    5xx, answers conform) but not judged: they are text, so an integer for a string,
    `[5]` for 5 or `{}` (sent as nothing) arrive as valid requests."""
    query = case.query or {}
    if query and not any(_repeated(value) for value in query.values()):
        return None
    if case.media_type == "application/x-www-form-urlencoded":
        return None
    allowed = [*NegativeDataRejectionConfig().allowed_statuses, "413", "429"]
    config = CheckConfig(negative_data_rejection=NegativeDataRejectionConfig(allowed))
    return negative_data_rejection(
        dataclasses.replace(ctx, config=config), response, case)


#: Every check schemathesis has (that one with its statuses widened).
CHECKS = tuple(negative_data_refused if check is negative_data_rejection else check
               for check in ALL_CHECKS)


@dataclass
class Hub:
    """A live hub with a seeded database and a token for each kind of client."""

    base: str
    partner: dict[str, str]
    admin: dict[str, str]
    receiver: str
    feed: str

    def headers(self, path: str) -> dict[str, str]:
        return self.admin if "/admin/" in path else self.partner


@dataclass
class Outcome:
    cases: int = 0
    failures: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    no_negative: set[str] = field(default_factory=set)  # sent no invalid request


def _settings(examples: int, **kwargs: Any) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck), **kwargs)


def seeded_hub(app: Any, database: Any, tmp_path: Any) -> Generator[Hub, None, None]:
    """The seeded hub on a live server (a generator: the server stops when it ends)."""
    receiver = f"127.0.0.1:{free_port()}"  # subscriptions may name it; nothing listens
    app.config["WEBHOOK_HOSTS_ALLOWED"] = [receiver]
    with database.session_scope(write=True) as session:
        make_operator(session, programmes(session)["EU-AEO"], 1, category="AEOF")
    feed = write_feed(tmp_path / "eu.csv", [eu_row(1), eu_row(2, status="exploded")])
    settings_ = conns.SyncSettings.from_config(app.config)
    with app.app_context():
        session = db.session()
        connection = conns.add_connection(
            session, settings_, name="eu-csv", connector_type="csv_snapshot",
            programmes=["EU-AEO"], config={"path": str(feed), "programme": "EU-AEO"},
            schedule="interval:1h")
        session.commit()
        connection_id = connection.id
    engine.run_sync(database, settings_, connection_id)
    partner = bearer(database, make_client(
        database, "US-CTPAT", "verify,match,registry:read,changes:read,export,webhooks",
        rate_limit=QUOTA))
    admin = bearer(database, make_client(database, None, "admin", rate_limit=QUOTA))
    with live_server(app) as base:
        yield Hub(base, partner, admin, f"http://{receiver}/hooks/aeo", str(feed))


def load_schema(hub: Hub) -> Any:
    return schemathesis.from_uri(hub.base + "/api/v1/openapi.json", base_url=hub.base)


def _failed(outcome: Outcome, case: Any, exc: Exception) -> None:
    outcome.failures.append(f"{case.operation.verbose_name}: {str(exc)[:800]}")


def _run_operation(operation: Any, headers: dict[str, str], examples: int,
                   outcome: Outcome, method: DataGenerationMethod) -> None:
    kwargs = {"headers": headers, "timeout": 30}

    @_settings(examples)
    @given(case=operation.as_strategy(data_generation_method=method))
    def run(case: Any) -> None:
        response = case.call(**kwargs)
        outcome.cases += 1
        outcome.seen.add(case.operation.verbose_name)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers,
                                   transport_kwargs=kwargs)
        except AssertionError as exc:  # collect, report all at the end
            _failed(outcome, case, exc)
        finally:
            response.close()

    if method is DataGenerationMethod.positive:
        run()
    elif not _negatable(operation.definition.raw):
        outcome.no_negative.add(operation.verbose_name)
    else:
        try:
            run()
        except (SkipTest, Unsatisfiable):  # none could be generated after all
            outcome.no_negative.add(operation.verbose_name)


def _negatable(definition: dict[str, Any]) -> bool:
    """Whether schemathesis finds invalid requests quickly: there is a body, a query or
    an id in the path to break, and no free-form string in the path (which has no invalid
    value: schemathesis spends seconds searching for one before breaking the rest)."""
    parameters = definition.get("parameters", [])
    if any(p["in"] == "path" and p["schema"].get("type") == "string" for p in parameters):
        return False
    return "requestBody" in definition or any(
        p["in"] == "query" or p["schema"].get("type") == "integer" for p in parameters)


def run_operations(hub: Hub, examples: int, negative_examples: int = 0) -> Outcome:
    """Every operation on its own: `examples` generated valid requests each, then
    `negative_examples` invalid ones (which must be refused with a 4xx)."""
    outcome = Outcome()
    for result in load_schema(hub).get_all_operations():
        operation = result.ok()
        headers = hub.headers(operation.path)
        _run_operation(operation, headers, examples, outcome, DataGenerationMethod.positive)
        if negative_examples:
            _run_operation(operation, headers, negative_examples, outcome,
                           DataGenerationMethod.negative)
    return outcome


def run_stateful(hub: Hub, scenarios: int, steps: int) -> Outcome:
    """The state machine schemathesis builds from the document's links."""
    outcome = Outcome()

    class Workflow(load_schema(hub).as_state_machine()):  # type: ignore[misc]
        def _add_results_to_targets(self, targets: Any, results: Any) -> None:
            # schemathesis 3.39 files a step's result under the bundle of the link its
            # answer matches by overriding `_add_result_to_targets`, which hypothesis
            # since renamed to this; without this, every result lands in the generic
            # bundle, no link is followed and the machine stops ("No progress can be
            # made") after its first step.
            for result in results:
                if result is None:
                    continue
                target = self._get_target_for_result(result)
                if target is not None:
                    super()._add_results_to_targets((target,), [result])

        def before_call(self, case: Any) -> None:
            # What a schema cannot say: the receivers the hub's operator allows, and
            # a config the connector accepts. The rest of the body stays generated.
            if not isinstance(case.body, dict):
                return
            if case.operation.path.startswith("/api/v1/webhooks") and "url" in case.body:
                case.body["url"] = hub.receiver
            if case.operation.verbose_name == "POST /api/v1/admin/connections":
                created = len(Workflow.connections)
                Workflow.connections.append(created)
                case.body.update(name=f"connection-{created}", type="csv_snapshot",
                                 programmes=["EU-AEO"],
                                 config={"path": hub.feed, "programme": "EU-AEO"},
                                 schedule="interval:1h", scope_countries=None)

        #: Connections created so far: each gets a name of its own.
        connections: list[int] = []

        def setup(self) -> None:
            self.deleted: set[str] = set()  # the paths this scenario deleted

        def teardown(self) -> None:
            # Each scenario starts from the same state, so that hypothesis, replaying
            # one, meets the same answers: no subscription left over (a client may hold
            # only so many), connections named afresh (a name is taken once).
            listed = requests.get(hub.base + "/api/v1/webhooks", headers=hub.partner,
                                  timeout=30).json()["subscriptions"]
            for subscription in listed:
                requests.delete(f"{hub.base}/api/v1/webhooks/{subscription['id']}",
                                headers=hub.partner, timeout=30)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": hub.headers(case.path), "timeout": 30}

        def after_call(self, response: Any, case: Any) -> None:
            outcome.cases += 1
            outcome.seen.add(f"{case.operation.verbose_name} -> {response.status_code}")
            if case.method.upper() == "DELETE" and 200 <= response.status_code < 300:
                self.deleted.add(case.formatted_path)

        def validate_response(self, response: Any, case: Any,
                              additional_checks: tuple[Any, ...] = ()) -> None:
            kwargs = self.get_call_kwargs(case)
            # The machine may follow a link from a created resource to one this scenario
            # has since deleted: there a 404 is right, not a resource never created.
            gone = any(case.formatted_path.startswith(path) for path in self.deleted)
            try:
                case.validate_response(response, checks=CHECKS, additional_checks=(
                                           (use_after_free,) if gone else STATEFUL_CHECKS),
                                       headers=kwargs["headers"], transport_kwargs=kwargs)
            except AssertionError as exc:
                _failed(outcome, case, exc)

    run_state_machine_as_test(Workflow, settings=_settings(
        scenarios, stateful_step_count=steps, phases=[Phase.generate]))
    return outcome


@pytest.fixture
def hub(ref_app, committed_db, tmp_path) -> Iterator[Hub]:
    yield from seeded_hub(ref_app, committed_db, tmp_path)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:jsonschema.RefResolver is deprecated:DeprecationWarning")
def test_schemathesis_every_operation(hub, backend):
    outcome = run_operations(hub, MAX_EXAMPLES, NEGATIVE_EXAMPLES)
    assert not outcome.failures, "\n".join(outcome.failures[:10])
    # Invalid requests were sent where they exist (bodies, typed queries and ids).
    assert {"POST /api/v1/verify", "GET /api/v1/operators/{operator_id}",
            "GET /api/v1/changes"}.isdisjoint(outcome.no_negative)
    assert len(outcome.seen) >= 45
    assert "POST /api/v1/admin/connections" in outcome.seen
    assert "POST /oauth/token" in outcome.seen


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:jsonschema.RefResolver is deprecated:DeprecationWarning")
def test_schemathesis_stateful(hub, backend):
    outcome = run_stateful(hub, STATEFUL_SCENARIOS, STATEFUL_STEPS)
    assert not outcome.failures, "\n".join(outcome.failures[:10])
    # Links were followed: a created webhook was then read or changed through its id.
    followed = {step for step in outcome.seen if "/api/v1/webhooks/{public_id}" in step}
    assert followed, sorted(outcome.seen)


def test_nul_characters_are_refused_not_a_server_error(ref_app, committed_db):
    """Found by schemathesis on PostgreSQL, which takes no NUL in text: a NUL anywhere in
    a body or a query is a 400 naming the field; in a path, the thing is unknown."""
    partner = bearer(committed_db, make_client(
        committed_db, "US-CTPAT", "verify,match,registry:read,export,webhooks"))
    admin = bearer(committed_db, make_client(committed_db, None, "admin"))
    http = ref_app.test_client()
    nul = "DE\x00123"
    for headers, method, path, body, name in (
        (partner, "post", "/api/v1/verify", {"trader": {"scheme": "EORI", "value": nul}},
         "trader.value"),
        (partner, "post", "/api/v1/match", {"trader": {"scheme": nul, "value": "DE1"}},
         "trader.scheme"),
        (partner, "post", "/api/v1/webhooks", {"url": "https://risk.example/hooks",
                                               "events": ["operator.suspended"],
                                               "description": nul}, "description"),
        (admin, "post", "/api/v1/admin/connections", {
            "name": "eu", "type": "csv_snapshot", "programmes": ["EU-AEO"],
            "schedule": "interval:1h", "config": {"path": nul}}, "config.path"),
        (partner, "get", "/api/v1/operators?programme=EU%00AEO", None, "programme"),
    ):
        answer = getattr(http, method)(path, json=body, headers=headers)
        assert answer.status_code == 400, (path, answer.get_json())
        assert name in [e["field"] for e in answer.get_json()["errors"]], answer.get_json()
    batch = http.post("/api/v1/verify/batch", headers=partner, json={"traders": [
        {"scheme": "EORI", "value": nul}, {"scheme": "EORI", "value": "DE123456789012345"}]})
    assert batch.status_code == 200
    first, second = batch.get_json()["decisions"]
    assert first["errors"][0]["field"] == "traders.0.value"
    assert second["decision"] != "invalid_reference"
    for headers, path in ((partner, "/api/v1/webhooks/whs_%00"),
                          (partner, "/api/v1/export/EU%00AEO.ndjson"),
                          (admin, "/api/v1/admin/clients/c%00/disable")):
        method = http.post if path.endswith("disable") else http.get
        assert method(path, headers=headers).status_code == 404, path


def test_a_query_member_given_twice_is_refused(ref_app, committed_db):
    """Found by schemathesis' negative data: `?cursor=&cursor=3` was answered for the
    first value; which one the client meant is unknowable, so it is a 400."""
    partner = bearer(committed_db, make_client(committed_db, "US-CTPAT", "registry:read"))
    http = ref_app.test_client()
    answer = http.get("/api/v1/operators?limit=5&limit=7", headers=partner)
    assert answer.status_code == 400
    assert answer.get_json()["errors"] == [{"field": "limit",
                                            "detail": "given more than once"}]
    assert http.get("/api/v1/operators?limit=5", headers=partner).status_code == 200
