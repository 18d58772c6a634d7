"""`/docs`: a self-contained page rendered on the server from the OpenAPI document.

No script and no asset from a CDN: the page is HTML with an inline stylesheet, listing
every operation with its scope, parameters, request body and responses, and linking the
machine-readable spec.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, render_template_string
from flask.typing import ResponseReturnValue

from hub.api.openapi import build_spec

bp = Blueprint("api_docs", __name__)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ spec.info.title }}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:62rem;margin:2rem auto;padding:0 1rem;
color:#1b1f24;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.1rem;margin-top:2rem;border-bottom:1px solid #ccd}
.op{border:1px solid #dde;border-radius:6px;padding:.6rem 1rem;margin:.8rem 0}
.m{font-weight:700;text-transform:uppercase;margin-right:.5rem}
.get{color:#0b6e4f}.post{color:#8a4b00}code{background:#f3f4f7;padding:0 .25rem}
pre{background:#f6f7f9;padding:.6rem;overflow:auto;font-size:.85rem}
.scope{font-size:.85rem;color:#555}
</style></head><body>
<h1>{{ spec.info.title }} <small>{{ spec.info.version }}</small></h1>
<p>{{ spec.info.description }}</p>
<p>Authenticate with OAuth 2.0 client credentials at <code>POST /oauth/token</code>
(<code>client_secret_basic</code>, <code>client_secret_post</code> or
<code>private_key_jwt</code>); server metadata at
<a href="/.well-known/oauth-authorization-server">/.well-known/oauth-authorization-server</a>.
Errors are <code>application/problem+json</code>. Machine-readable spec:
<a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</p>
{% for path, ops in spec.paths.items() %}{% for method, op in ops.items() %}
<div class="op"><div><span class="m {{ method }}">{{ method }}</span><code>{{ path }}</code>
</div><div>{{ op.summary }}</div>
<div class="scope">scope: {{ op.security[0].oauth2|join(", ") }}</div>
{% if op.parameters %}<div>Parameters: {% for p in op.parameters %}<code>{{ p.name
 or p.schema }}</code> ({{ p["in"] }}){% if not loop.last %}, {% endif %}{% endfor %}
</div>{% endif %}
{% if op.requestBody %}<div>Body: <code>{{ ref(op.requestBody) }}</code></div>{% endif %}
<div>Responses: {% for code, r in op.responses.items() %}<code>{{ code }}</code>
{% endfor %}</div></div>
{% endfor %}{% endfor %}
<h2>Schemas</h2>
{% for name, schema in spec.components.schemas.items() %}
<h3 id="{{ name }}">{{ name }}</h3><pre>{{ dump(schema) }}</pre>
{% endfor %}
</body></html>"""


def _ref(body: dict[str, Any]) -> str:
    schema = body["content"]["application/json"]["schema"]
    ref = schema.get("$ref", "") if isinstance(schema, dict) else str(schema)
    return str(ref).rsplit("/", 1)[-1]


@bp.get("/docs")
def docs() -> ResponseReturnValue:
    from hub.auth.oauth2 import issuer

    spec = build_spec(issuer() + "/")
    return render_template_string(PAGE, spec=spec, ref=_ref,
                                  dump=lambda s: json.dumps(s, indent=2))
