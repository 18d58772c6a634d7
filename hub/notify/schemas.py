"""Marshmallow schemas of the webhook and node-push requests."""

from __future__ import annotations

from marshmallow import fields, validate

from hub.schemas import StrictSchema


class NodeNotifySchema(StrictSchema):
    """`POST /api/v1/nodes/notify`: which connection changed (its name or id)."""

    connection = fields.String(required=True, validate=validate.Length(min=1, max=120))


class SubscriptionCreateSchema(StrictSchema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    events = fields.List(fields.String(validate=validate.Length(min=1, max=40)),
                         required=True, validate=validate.Length(min=1, max=20))
    description = fields.String(load_default=None, validate=validate.Length(max=200))


class SubscriptionUpdateSchema(StrictSchema):
    url = fields.String(load_default=None, validate=validate.Length(min=1, max=2000))
    events = fields.List(fields.String(validate=validate.Length(min=1, max=40)),
                         load_default=None, validate=validate.Length(min=1, max=20))
    description = fields.String(load_default=None, validate=validate.Length(max=200))
    # true: resume a paused subscription; false: switch it off.
    active = fields.Boolean(load_default=None)


class DeliveriesQuerySchema(StrictSchema):
    status = fields.String(load_default=None,
                           validate=validate.OneOf(["pending", "delivered", "failed"]))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
