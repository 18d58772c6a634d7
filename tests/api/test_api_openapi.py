"""The served OpenAPI document: a valid OpenAPI 3 document with an entry for every route
the hub serves, and the parts a generated client needs on every operation."""

from __future__ import annotations

import base64
import hashlib
import json
import re

from openapi_schema_validator import OAS30Validator, oas30_format_checker
from openapi_spec_validator import validate

#: The routes the document covers: everything but the company pages and the dashboard.
API_PREFIXES = ("/api/", "/oauth/", "/.well-known/", "/healthz", "/readyz", "/metrics",
                "/docs")


def _served(app) -> set[tuple[str, str]]:
    out = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API_PREFIXES):
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        out |= {(path, m.lower()) for m in rule.methods if m not in ("HEAD", "OPTIONS")}
    return out


def test_every_served_route_has_a_spec_entry(app):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    missing = _served(app) - documented
    assert not missing, f"routes without a spec entry: {sorted(missing)}"
    assert not documented - _served(app), "spec entries without a route"


def test_the_document_is_valid_and_complete(app):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    validate(spec)
    ids = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            ids.append(op["operationId"])
            assert op["summary"] and op["description"] and op["tags"], where
            if path.startswith("/oauth/"):  # a refused client is 401 there, never 403
                assert {"400", "401", "429"} <= set(op["responses"]), where
                assert "403" not in op["responses"], where
            else:
                assert {"400", "401", "403", "429"} <= set(op["responses"]), where
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    undescribed = [f"{name}.{field}" for name, schema in spec["components"]["schemas"].items()
                   for field, prop in (schema.get("properties") or {}).items()
                   if not prop.get("description")]
    assert not undescribed, undescribed
    problem = spec["components"]["schemas"]["Problem"]
    assert "request_id" in problem["properties"]
    trader = spec["components"]["schemas"]["Trader"]
    assert trader["anyOf"][0]["required"] == ["scheme", "value"]
    verify = spec["paths"]["/api/v1/verify"]["post"]
    assert verify["requestBody"]["content"]["application/json"]["example"]
    assert verify["responses"]["200"]["content"]["application/json"]["example"]
    assert "RateLimit" in verify["responses"]["200"]["headers"]
    token = spec["paths"]["/oauth/token"]["post"]
    assert "application/x-www-form-urlencoded" in token["requestBody"]["content"]


def test_the_docs_page_shows_fields_and_examples_without_a_cdn(app):
    page = app.test_client().get("/docs").get_data(as_text=True)
    assert "getDeclarationCodes" in page and "request_id" in page
    assert "DEMUSLOG1HAM" in page  # an example
    assert "The declaration data element where the code goes" in page  # a field
    assert not re.search(r"""(src|href)=["']https?://""", page)
    # Each error example once (the API's and OAuth's), not once per operation.
    assert page.count("Example 403:") == 1 and "the token does not carry the scope" in page


def test_the_docs_page_allows_only_its_own_stylesheet(app):
    response = app.test_client().get("/docs")
    policy = response.headers["Content-Security-Policy"]
    style = re.search(r"<style>(.*?)</style>", response.get_data(as_text=True), re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def _examples(spec) -> list[tuple[str, dict, object]]:
    """(where, schema, example) of every request body and answer content; the example
    is None where there is none."""
    found = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            for media, content in (op.get("requestBody") or {}).get("content", {}).items():
                found.append((f"{where} request {media}", content["schema"],
                              content.get("example")))
            for status, answer in op["responses"].items():
                for media, content in (answer.get("content") or {}).items():
                    found.append((f"{where} {status} {media}", content["schema"],
                                  content.get("example")))
    return found


def test_every_request_and_answer_has_an_example_valid_against_its_schema(app):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    examples = _examples(spec)
    missing = [where for where, _schema, example in examples if example is None]
    assert not missing, f"no example: {missing}"
    invalid = []
    for where, schema, example in examples:
        if where.endswith(("application/x-ndjson", "text/plain", "text/html")):
            continue  # not JSON: the example is the text itself
        root = {**schema, "components": spec["components"]}
        validator = OAS30Validator(root, format_checker=oas30_format_checker)
        invalid += [f"{where}: {error.message}" for error in validator.iter_errors(example)]
    assert not invalid, "\n".join(invalid)
    statuses = {where.split()[2] for where, _schema, _example in examples}
    assert {"200", "201", "202", "400", "401", "403", "404", "429"} <= statuses


def test_an_example_that_breaks_its_schema_is_caught(app):
    """The check above can fail: a Problem example without `status` is invalid."""
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    root = {"$ref": "#/components/schemas/Problem", "components": spec["components"]}
    errors = list(OAS30Validator(root).iter_errors({"type": "x", "title": "y"}))
    assert errors and "status" in errors[0].message


def test_the_export_example_is_one_operator_a_line_as_getoperator_answers(app):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    export = spec["paths"]["/api/v1/export/{programme}.ndjson"]["get"]["responses"]["200"]
    lines = export["content"]["application/x-ndjson"]["example"].splitlines()
    operator = spec["paths"]["/api/v1/operators/{operator_id}"]["get"]["responses"]["200"][
        "content"]["application/json"]["example"]["operator"]
    assert [json.loads(line) for line in lines] == [operator]
