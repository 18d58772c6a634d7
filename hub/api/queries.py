"""The query of every API request, checked once, before its view (`check_query`).

A query member that holds a NUL character, is given more than once, or is not one the
operation documents is a 400 naming it, with the checks and messages of
`hub.schemas.StrictSchema`, as an operation's own query schema gives them: so an
operation without parameters (`GET /api/v1/arrangements`, `POST /api/v1/verify` ...)
refuses any member. The members an operation takes are read from the OpenAPI document,
which is built from the very query schemas the views load, once per process.

A protected operation authenticates first (`hub.auth.guard`), as it would before its
view: a caller without a valid token or the scope learns nothing about its query.
"""

from __future__ import annotations

import functools
import re

from flask import current_app, request
from marshmallow import INCLUDE, Schema, ValidationError, fields

from hub.api.openapi import build_spec
from hub.auth.guard import authenticate, check_scope
from hub.schemas import StrictSchema

#: The paths of the API (the company pages and the dashboard have their own forms).
API_PREFIX = "/api/"
_METHODS = frozenset({"get", "put", "post", "delete", "patch"})
_RULE_PARAMETER = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")  # `<int:operator_id>`


class _AnyMember(StrictSchema):
    """A query whose members the document does not list (an OPTIONS request): NUL
    characters and repeated members only."""

    class Meta(StrictSchema.Meta):
        unknown = INCLUDE


@functools.cache
def documented_queries() -> dict[tuple[str, str], frozenset[str]]:
    """The query members of each operation, by (path as documented, METHOD)."""
    return {(path, method.upper()): frozenset(
                parameter["name"] for parameter in operation.get("parameters", ())
                if parameter.get("in") == "query")
            for path, operations in build_spec()["paths"].items()
            for method, operation in operations.items() if method in _METHODS}


@functools.cache
def _schema(members: frozenset[str] | None) -> Schema:
    if members is None:
        return _AnyMember()
    return StrictSchema.from_dict({name: fields.Raw() for name in sorted(members)},
                                  name="DocumentedQuery")()


def check_query() -> None:
    """Refuse the request's query (ValidationError: a 400 naming the members) when it
    holds a NUL character, a repeated member or a member its operation does not take."""
    rule = request.url_rule
    if not request.query_string or rule is None or not rule.rule.startswith(API_PREFIX):
        return
    method = "GET" if request.method == "HEAD" else request.method
    path = _RULE_PARAMETER.sub(r"{\1}", rule.rule)
    try:
        _schema(documented_queries().get((path, method))).load(request.args)
    except ValidationError:
        view = current_app.view_functions.get(rule.endpoint)
        scope = getattr(view, "required_scope", None)
        if scope is not None:
            check_scope(authenticate(), scope)
        raise
