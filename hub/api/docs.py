"""`/docs`: a self-contained page rendered on the server from the OpenAPI document.

No script and no asset from a CDN: the page is HTML with an inline stylesheet, listing
every operation by tag with its description, scope, parameters, request body, responses
and examples, and every schema with its fields and their descriptions, linking the
machine-readable spec.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from flask import Blueprint, render_template_string
from flask.typing import ResponseReturnValue
from markupsafe import escape

from hub.api.openapi import build_spec
from hub.auth.oauth2 import issuer

bp = Blueprint("api_docs", __name__)

STYLE = """body{font-family:system-ui,sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem;
color:#1b1f24;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccd}
.op{border:1px solid #dde;border-radius:6px;padding:.6rem 1rem;margin:.8rem 0}
.m{font-weight:700;text-transform:uppercase;margin-right:.5rem}
.get{color:#0b6e4f}.post{color:#8a4b00}.put,.patch{color:#4b3a8a}.delete{color:#a01c1c}
code{background:#f3f4f7;padding:0 .25rem}
pre{background:#f6f7f9;padding:.6rem;overflow:auto;font-size:.85rem}
.small{font-size:.85rem;color:#555}table{border-collapse:collapse;font-size:.9rem}
td,th{border-bottom:1px solid #e4e6eb;padding:.2rem .5rem;text-align:left;vertical-align:top}
"""
#: The page's policy: nothing but its own inline stylesheet, named by its digest.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'sha256-"
    + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    + "'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ spec.info.title }}</title>
<style>{{ style }}</style></head><body>
<h1>{{ spec.info.title }} <small>{{ spec.info.version }}</small></h1>
<p>{{ spec.info.description }}</p>
<p>Authenticate with OAuth 2.0 client credentials at <code>POST /oauth/token</code>
(<code>client_secret_basic</code>, <code>client_secret_post</code> or
<code>private_key_jwt</code>); server metadata at
<a href="/.well-known/oauth-authorization-server">/.well-known/oauth-authorization-server</a>.
Errors are <code>application/problem+json</code> with a <code>request_id</code>.
Machine-readable document: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</p>
<h2>Errors</h2>
<p>Every operation answers these as the problem documents below (the OAuth endpoints
with their RFC 6749 <code>error</code>); each operation lists its codes.</p>
{% for code, example in errors %}<div class="small">Example {{ code }}:</div>
<pre>{{ dump(example) }}</pre>{% endfor %}
{% for tag in tags %}<h2>{{ tag }}</h2>
{% for path, method, op in operations if op.tags[0] == tag %}
<div class="op" id="{{ op.operationId }}"><div><span class="m {{ method }}">{{ method
 }}</span><code>{{ path }}</code> <span class="small">{{ op.operationId }}</span></div>
<p>{{ op.description }}</p>
<div class="small">{% if op.security and op.security[0].oauth2 %}scope: {{
 op.security[0].oauth2|join(", ") }}{% elif op.security %}client authentication{% else
 %}public{% endif %}</div>
{% if op.parameters %}<table><tr><th>parameter</th><th>in</th><th>description</th></tr>
{% for p in params(op) %}<tr><td><code>{{ p.name }}</code>{% if p.required %} *{% endif
 %}</td><td>{{ p["in"] }}</td><td>{{ p.description or "" }}</td></tr>{% endfor %}
</table>{% endif %}
{% if op.requestBody %}{% for media, body in op.requestBody.content.items() %}
<div>Body ({{ media }}): {{ link(body.schema)|safe }}</div>
{% if body.example is defined %}<pre>{{ dump(body.example) }}</pre>{% endif %}
{% endfor %}{% endif %}
<div>Responses: {% for code, r in op.responses.items() %}<code>{{ code }}</code> {{
 r.description }}{% if not loop.last %}; {% endif %}{% endfor %}</div>
{% for code, r in op.responses.items() if code.startswith("2") %}{%
 for media, c in (r.content or {}).items() %}{%
 if c.example is defined %}<div class="small">Example {{ code }}:</div>
<pre>{{ dump(c.example) }}</pre>{% endif %}{% endfor %}{% endfor %}
</div>
{% endfor %}{% endfor %}
<h2>Schemas</h2>
{% for name, schema in spec.components.schemas.items() %}
<h3 id="schema-{{ name }}">{{ name }}</h3>{% if schema.description %}<p>{{
 schema.description }}</p>{% endif %}
<table><tr><th>field</th><th>type</th><th>description</th></tr>
{% for field, prop in (schema.properties or {}).items() %}<tr><td><code>{{ field
 }}</code>{% if field in (schema.required or []) %} *{% endif %}</td><td>{{
 link(prop)|safe }}</td><td>{{ prop.description or "" }}</td></tr>{% endfor %}</table>
{% if schema.anyOf %}<p class="small">Conditions: <code>{{ dump(schema.anyOf) }}</code></p>
{% endif %}{% if schema.example is defined %}<pre>{{ dump(schema.example) }}</pre>{% endif %}
{% endfor %}
</body></html>"""


def _link(schema: Any) -> str:
    """A schema's type, linking a referenced component to its table."""
    if not isinstance(schema, dict):
        return escape(str(schema))
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return f'<a href="#schema-{escape(name)}">{escape(name)}</a>'
    if schema.get("type") == "array":
        return "array of " + _link(schema.get("items", {}))
    return escape(str(schema.get("type", "object")))


def _params(op: dict[str, Any]) -> list[dict[str, Any]]:
    """An operation's named parameters (apispec spells query schemas out as these)."""
    return [p for p in op.get("parameters", []) if "name" in p]


def _error_examples(operations: list[tuple[str, str, dict[str, Any]]]
                    ) -> list[tuple[str, Any]]:
    """Each distinct error answer's example, once, by status (operations share them)."""
    found: dict[str, tuple[str, Any]] = {}
    for _path, _method, op in operations:
        for code, answer in op["responses"].items():
            if code.startswith("2"):
                continue
            for content in (answer.get("content") or {}).values():
                if "example" in content:
                    key = code + json.dumps(content["example"], sort_keys=True)
                    found.setdefault(key, (code, content["example"]))
    return sorted(found.values(), key=lambda item: (item[0], json.dumps(item[1])))


@bp.get("/docs")
def docs() -> ResponseReturnValue:
    spec = build_spec(issuer() + "/")
    operations = [(path, method, op) for path, ops in spec["paths"].items()
                  for method, op in ops.items()]
    tags = list(dict.fromkeys(op["tags"][0] for _path, _method, op in operations))
    page = render_template_string(PAGE, spec=spec, tags=tags, operations=operations,
                                  errors=_error_examples(operations), style=STYLE,
                                  link=_link, params=_params,
                                  dump=lambda s: json.dumps(s, indent=2))
    return page, {"Content-Security-Policy": CONTENT_SECURITY_POLICY,
                  "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
