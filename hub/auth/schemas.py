"""Request schemas of the client administration routes (`hub.auth.admin_routes`)."""

from __future__ import annotations

from marshmallow import fields, validate

from hub.auth import service
from hub.auth.models import SCOPES
from hub.schemas import StrictSchema


class ClientCreateSchema(StrictSchema):
    name = fields.String(required=True,
                         validate=validate.Length(min=1, max=service.NAME_MAX_LENGTH))
    programme = fields.String(load_default=None)
    scopes = fields.List(fields.String(validate=validate.OneOf(SCOPES)), required=True,
                         validate=validate.Length(min=1))
    jwks = fields.Dict(load_default=None)
    rate_limit = fields.Integer(load_default=None,
                                validate=validate.Range(min=1, max=service.RATE_LIMIT_MAX),
                                metadata={"description": "Quota units per window (default: "
                                          "the hub's); a batch costs its items"})


class RotateSchema(StrictSchema):
    overlap_seconds = fields.Integer(load_default=None,
                                     validate=validate.Range(
                                         min=0, max=service.OVERLAP_MAX_SECONDS))
    revoke_tokens = fields.Boolean(load_default=False)
