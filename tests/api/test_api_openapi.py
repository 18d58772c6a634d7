"""The served OpenAPI document: a valid OpenAPI 3 document with an entry for every route
the hub serves, and the parts a generated client needs on every operation."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

#: The routes the document covers: everything but the company pages and the dashboard.
API_PREFIXES = ("/api/", "/oauth/", "/.well-known/", "/healthz", "/readyz", "/metrics",
                "/docs")


def _served(app) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
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
