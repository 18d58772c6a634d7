"""Marshmallow schemas of the partner API: requests are loaded through them, and the
OpenAPI document is generated from all of them (responses are built as plain dicts of
the same shape on the hot paths, and schemathesis checks that they conform)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from marshmallow import (
    EXCLUDE,
    INCLUDE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

from hub.db import MAX_ID
from hub.errors import flatten_messages
from hub.schemas import StrictSchema
from hub.sync import quarantine
from hub.sync.connections import MAX_STALENESS_SECONDS

MAX_BATCH = 10_000
#: The largest row id a table holds (ids are INTEGER columns, 32-bit on PostgreSQL):
#: larger ids in paths, queries and cursors are simply unknown.
FLOWS = ("import", "export")


class AddressSchema(StrictSchema):
    street = fields.String(load_default=None, validate=validate.Length(max=300))
    city = fields.String(load_default=None, validate=validate.Length(max=120))
    postcode = fields.String(load_default=None, validate=validate.Length(max=32))
    country = fields.String(load_default=None, validate=validate.Regexp(r"^[A-Za-z]{2}$"))


class TraderSchema(StrictSchema):
    """A trader reference: an identifier with its scheme, a name and address, or both."""

    scheme = fields.String(load_default=None, validate=validate.Length(min=1, max=32))
    value = fields.String(load_default=None, validate=validate.Length(min=1, max=64))
    name = fields.String(load_default=None, validate=validate.Length(min=1, max=300))
    address = fields.Nested(AddressSchema, load_default=None)

    @validates_schema
    def _complete(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if bool(data.get("scheme")) != bool(data.get("value")):
            raise ValidationError("an identifier needs both scheme and value", "scheme")
        if not data.get("value") and not (data.get("name") or "").strip():
            raise ValidationError("give an identifier (scheme and value), a name, or both",
                                  "_schema")


def _within_utc_range(value: dt.datetime) -> None:
    """A time whose UTC form exists (year 1 to 9999): `0001-01-01T00:00:00+14:00` does not."""
    try:
        value.astimezone(dt.UTC)
    except OverflowError:
        raise ValidationError("out of range: the time in UTC must fall between the years "
                              "1 and 9999") from None


class VerifyOptionsMixin(StrictSchema):
    date = fields.Date(load_default=None, metadata={"description": "Default: today."})
    flow = fields.String(load_default="import", validate=validate.OneOf(FLOWS))
    known_at = fields.AwareDateTime(load_default=None, validate=_within_utc_range,
                                    metadata={"description": "Answer as the hub knew it then."})
    programme = fields.String(load_default=None, metadata={
        "description": "Recognising programme (admin clients only; others use their own)."})


class VerifyRequestSchema(VerifyOptionsMixin):
    trader = fields.Nested(TraderSchema, required=True)


_DECLARE = fields.Boolean(load_default=False, metadata={
    "description": "Give each answer naming an operator its `declare` member (the codes to "
                   "declare for it); off by default, as it reads each operator's identifiers."})


class VerifyBatchRequestSchema(VerifyOptionsMixin):
    traders = fields.List(fields.Nested(TraderSchema), required=True,
                          validate=validate.Length(min=1, max=MAX_BATCH))
    declare = _DECLARE


class _ListAsIs(fields.Field):
    """A JSON array taken as it is, not item by item (`load_batch` checks the items)."""

    default_error_messages = {"invalid": fields.List.default_error_messages["invalid"]}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, list):
            raise self.make_error("invalid")
        return value


class VerifyBatchEnvelopeSchema(VerifyOptionsMixin):
    """The batch request with its traders not yet parsed (see `load_batch`)."""

    nul_checked_elsewhere = ("traders",)
    traders = _ListAsIs(required=True, validate=validate.Length(min=1, max=MAX_BATCH))
    declare = _DECLARE


_trader = TraderSchema()
_envelope = VerifyBatchEnvelopeSchema()


def _plain_trader(item: Any) -> dict[str, Any] | None:
    """`TraderSchema().load(item)` for `{"scheme": ..., "value": ...}` that passes the
    schema's checks (types, lengths, no NUL); None for anything else (left to the schema)."""
    if (type(item) is dict and len(item) == 2 and type(item.get("scheme")) is str
            and type(item.get("value")) is str and 1 <= len(item["scheme"]) <= 32
            and 1 <= len(item["value"]) <= 64
            and "\x00" not in item["scheme"] and "\x00" not in item["value"]):
        return {"scheme": item["scheme"], "value": item["value"], "name": None,
                "address": None}
    return None


def load_batch(data: Any) -> dict[str, Any]:
    """The batch request: its envelope checked whole, its traders one by one.

    A wrong envelope (not an object, `traders` not a list of 1 to `MAX_BATCH` items, an
    unknown member, a bad date, flow or known-at) raises `ValidationError` (a 400). A
    malformed trader does not: its position holds None in `traders` and its messages,
    keyed by `traders.<n>.<field>`, are in `item_errors`, so that the other traders are
    answered. Nearly every reference is `{"scheme": ..., "value": ...}`; those are checked
    directly (the same types and lengths as `TraderSchema`), any other goes through
    `TraderSchema`, so results and messages are the schema's.
    """
    payload: dict[str, Any] = _envelope.load(data)
    traders: list[dict[str, Any] | None] = []
    errors: dict[int, dict[str, list[str]]] = {}
    for position, item in enumerate(payload["traders"]):
        plain = _plain_trader(item)
        if plain is not None:
            traders.append(plain)
            continue
        try:
            traders.append(_trader.load(item))
        except ValidationError as exc:
            traders.append(None)
            errors[position] = flatten_messages(
                exc.messages, f"traders.{position}")
    payload["traders"] = traders
    payload["item_errors"] = errors
    return payload


_verify = VerifyRequestSchema()
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def load_verify(data: Any) -> dict[str, Any]:
    """`VerifyRequestSchema().load(data)`, fast for the usual body.

    `{"trader": {"scheme": ..., "value": ...}}` with an optional ISO `date` and `flow` is
    checked directly (the same types, lengths and choices as the schema) and given the
    schema's defaults; any other body, or one that fails a check, goes through the schema,
    so results and errors are the schema's.
    """
    if type(data) is dict and data.keys() <= {"trader", "date", "flow"}:
        trader = _plain_trader(data.get("trader"))
        day, flow = data.get("date"), data.get("flow", "import")
        if (trader is not None and type(flow) is str and flow in FLOWS
                and (day is None or (type(day) is str and _ISO_DAY.fullmatch(day)))):
            try:
                parsed = dt.date.fromisoformat(day) if day is not None else None
            except ValueError:
                parsed = None
            else:
                return {"trader": trader, "date": parsed, "flow": flow, "known_at": None,
                        "programme": None}
    loaded: dict[str, Any] = _verify.load(data)
    return loaded


class MatchRequestSchema(StrictSchema):
    trader = fields.Nested(TraderSchema, required=True)
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=50))


class CategorySchema(Schema):
    code = fields.String()
    status = fields.String(allow_none=True)
    since = fields.String(allow_none=True)


class IdentifierSchema(Schema):
    scheme = fields.String()
    value = fields.String()
    origin = fields.String()
    linked = fields.Boolean()


class OperatorSchema(Schema):
    """An operator as shared with the client: fields outside its arrangements are absent."""

    id = fields.Integer(required=True)
    programme = fields.String()
    legal_name = fields.String()
    street = fields.String(allow_none=True)
    city = fields.String(allow_none=True)
    postcode = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    country = fields.String()
    status = fields.String()
    status_effective = fields.Date(allow_none=True)
    categories = fields.List(fields.Nested(CategorySchema))
    authorised_on = fields.Date(allow_none=True)
    valid_from = fields.Date(allow_none=True)
    valid_until = fields.Date(allow_none=True)
    issuing_authority = fields.String(allow_none=True)
    trader_id_scheme = fields.String()
    trader_id = fields.String()
    authorisation_number = fields.String()
    identifiers = fields.List(fields.Nested(IdentifierSchema))
    listed = fields.Boolean()
    removed_at = fields.DateTime(allow_none=True)
    updated_at = fields.DateTime()


class DataVersionSchema(Schema):
    data_version = fields.DateTime(allow_none=True, required=True, metadata={
        "description": "When the oldest registry behind the answer last synced."})
    data_age_seconds = fields.Integer(allow_none=True, required=True)


class OperatorPageSchema(DataVersionSchema):
    items = fields.List(fields.Nested(OperatorSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class OperatorDetailSchema(DataVersionSchema):
    operator = fields.Nested(OperatorSchema, required=True)


class EventSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    effective_date = fields.Date()
    recorded_at = fields.DateTime()
    changes = fields.Dict()
    previous = fields.Dict()


class HistorySchema(DataVersionSchema):
    operator_id = fields.Integer(required=True)
    events = fields.List(fields.Nested(EventSchema), required=True)


class DecisionSchema(Schema):
    """A recognition answer (the fields of the CLI's verify)."""

    class Meta:
        unknown = EXCLUDE

    recognised = fields.Boolean(required=True)
    reasons = fields.List(fields.Dict())
    operator = fields.Dict(allow_none=True)


class VerifyResponseSchema(DataVersionSchema):
    decision = fields.Dict(required=True)


class VerifyBatchResponseSchema(DataVersionSchema):
    decisions = fields.List(fields.Dict(), required=True)


class RecognitionSchema(DataVersionSchema):
    operator_id = fields.Integer(required=True)
    recognitions = fields.List(fields.Dict(), required=True)


class MatchResponseSchema(DataVersionSchema):
    candidates = fields.List(fields.Dict(), required=True)


class ChangeSchema(Schema):
    event_id = fields.Integer(allow_none=True)
    kind = fields.String(required=True)
    operator_id = fields.Integer(required=True)
    programme = fields.String()
    reason = fields.String()
    arrangement = fields.String()
    effective_date = fields.Date(allow_none=True)
    recorded_at = fields.DateTime(allow_none=True)
    changes = fields.Dict()
    previous = fields.Dict()


class ChangesPageSchema(DataVersionSchema):
    changes = fields.List(fields.Nested(ChangeSchema), required=True)
    next_cursor = fields.String(required=True)
    has_more = fields.Boolean(required=True)


class ProgrammeSchema(Schema):
    code = fields.String()
    name = fields.String()
    administration = fields.String()
    categories = fields.List(fields.Dict())
    primary_scheme = fields.String()
    consent_required = fields.Boolean()
    data_version = fields.DateTime(allow_none=True)


class ProgrammeListSchema(Schema):
    programmes = fields.List(fields.Nested(ProgrammeSchema), required=True)


class DirectionSchema(Schema):
    recognising = fields.String()
    recognised = fields.String()
    categories = fields.List(fields.String())
    flows = fields.List(fields.String())
    active_from = fields.Date(allow_none=True)
    active_until = fields.Date(allow_none=True)
    active = fields.Boolean()


class ArrangementSchema(Schema):
    code = fields.String()
    title = fields.String()
    kind = fields.String()
    status = fields.String(allow_none=True)
    parties = fields.List(fields.String())
    data_fields = fields.List(fields.String())
    directions = fields.List(fields.Nested(DirectionSchema))


class ArrangementListSchema(Schema):
    arrangements = fields.List(fields.Nested(ArrangementSchema), required=True)


class ClientSchema(Schema):
    client_id = fields.String()
    name = fields.String()
    programme = fields.String(allow_none=True)
    scopes = fields.List(fields.String())
    private_key_jwt = fields.Boolean()
    disabled = fields.Boolean()
    rate_limit = fields.Integer(allow_none=True)
    client_secret = fields.String(metadata={"description": "Only when created or rotated."})
    previous_secret_accepted_until = fields.DateTime(
        allow_none=True, metadata={"description": "After a rotation: until when the "
                                                  "previous secret is still accepted."})


class ClientListSchema(Schema):
    clients = fields.List(fields.Nested(ClientSchema), required=True)


class OperatorQuerySchema(StrictSchema):
    programme = fields.String(load_default=None)
    status = fields.String(load_default=None)
    category = fields.String(load_default=None)
    country = fields.String(load_default=None, validate=validate.Regexp(r"^[A-Za-z]{2}$"))
    changed_since = fields.AwareDateTime(load_default=None, validate=_within_utc_range)
    include_removed = fields.Boolean(load_default=False)
    cursor = fields.String(load_default=None)
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class ChangesQuerySchema(StrictSchema):
    cursor = fields.String(load_default=None)
    limit = fields.Integer(load_default=500, validate=validate.Range(min=1, max=5000))


class DeclarationCodeSchema(Schema):
    """One code to declare for the operator (from the hub's reference data)."""

    scheme = fields.String(required=True, metadata={
        "description": "The identifier scheme the code is built from (MID, EORI, TCUIN ...)"})
    value = fields.String(required=True, metadata={"description": "The identifier's value"})
    code = fields.String(metadata={"description": "The code to declare"})
    cpc = fields.String(metadata={"description": "Singapore TradeNet: the CPC"})
    pc1 = fields.String(metadata={"description": "Singapore TradeNet: PC1 (country)"})
    pc2 = fields.String(metadata={"description": "Singapore TradeNet: PC2 (number)"})
    field = fields.String(metadata={
        "description": "The declaration data element where the code goes"})
    format_note = fields.String(metadata={"description": "How the code is written"})
    roles = fields.List(fields.String(), required=True, metadata={
        "description": "The trader roles the code identifies (manufacturer, shipper, "
                       "consignor ...); empty when the reference data does not say"})
    source = fields.String(allow_none=True, required=True, metadata={
        "description": "Where the reference data has this rule from"})
    verified = fields.Boolean(required=True, metadata={
        "description": "False when the reference data marks the rule unverified"})


class DeclareSchema(Schema):
    declared_in = fields.String(required=True, metadata={
        "description": "The administration where the code is declared"})
    codes = fields.List(fields.Nested(DeclarationCodeSchema), required=True)
    warnings = fields.List(fields.String(), required=True, metadata={
        "description": "Why a code is missing (for example no MID linked to the EORI, "
                       "which CBP needs), or why values are withheld"})
    arrangements = fields.List(fields.String(), required=True, metadata={
        "description": "Arrangements under which that administration recognises the "
                       "operator's programme on the day"})


class DeclarationCodesSchema(DataVersionSchema, DeclareSchema):
    operator_id = fields.Integer(required=True)
    programme = fields.String(required=True, metadata={
        "description": "The operator's programme"})


class DeclarationCodesQuerySchema(StrictSchema):
    declaring = fields.String(load_default=None, validate=validate.Regexp(r"^[A-Za-z]{2,8}$"),
                              metadata={"description": "The administration where the code is "
                                        "declared (default: the client's own)."})
    date = fields.Date(load_default=None, metadata={
        "description": "The day whose active arrangements are named (default: today)."})


class ProblemSchema(Schema):
    """RFC 9457 problem document; further members (retry_after, max_items ...) may
    appear."""

    class Meta:
        unknown = INCLUDE

    type = fields.String(required=True, metadata={"description": "The problem's type URI"})
    title = fields.String(required=True, metadata={"description": "Short summary"})
    status = fields.Integer(required=True, metadata={"description": "The HTTP status"})
    detail = fields.String(metadata={"description": "What went wrong, for people"})
    request_id = fields.String(metadata={
        "description": "The request's id (also the X-Request-Id header): quote it to the "
                       "hub's operator"})
    errors = fields.List(fields.Dict(), metadata={
        "description": "Each failing field: {field, detail}"})
    error = fields.String(metadata={"description": "OAuth: the RFC 6749 error code"})
    error_description = fields.String(metadata={"description": "OAuth: its description"})
    retry_after = fields.Integer(metadata={"description": "429: seconds to wait"})
    max_items = fields.Integer(metadata={
        "description": "The largest batch the client's quota allows"})


# --- webhooks, node pushes, the audit head ----------------------------------------------


class SubscriptionSchema(Schema):
    id = fields.String(required=True, metadata={"description": "The subscription's id"})
    url = fields.String(required=True, metadata={"description": "The receiver"})
    events = fields.List(fields.String(), required=True, metadata={
        "description": "The event types delivered"})
    description = fields.String(allow_none=True, required=True)
    status = fields.String(required=True, metadata={"description": "active, paused ..."})
    paused_at = fields.DateTime(allow_none=True, required=True)
    paused_reason = fields.String(allow_none=True, required=True)
    consecutive_failures = fields.Integer(required=True)
    last_success_at = fields.DateTime(allow_none=True, required=True)
    last_failure_at = fields.DateTime(allow_none=True, required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(allow_none=True, required=True)


class SubscriptionWithSecretSchema(SubscriptionSchema):
    secret = fields.String(required=True, metadata={
        "description": "The signing secret, shown only now"})


class SubscriptionListSchema(Schema):
    subscriptions = fields.List(fields.Nested(SubscriptionSchema), required=True)


class EventTypesSchema(Schema):
    events = fields.List(fields.String(), required=True, metadata={
        "description": "Event types this client may subscribe to"})


class PingQueuedSchema(Schema):
    event_id = fields.String(required=True)
    type = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "queued"})


class DeliveryListSchema(Schema):
    subscription = fields.String(required=True)
    status = fields.String(required=True)
    deliveries = fields.List(fields.Dict(), required=True, metadata={
        "description": "Recent deliveries, each with its attempt log"})


class NodeNotifiedSchema(Schema):
    connection = fields.String(required=True)
    connection_id = fields.Integer(required=True)
    requested_at = fields.DateTime(required=True)
    coalesced = fields.Boolean(required=True, metadata={
        "description": "Joined a request not yet started"})
    sync_running = fields.Boolean(required=True)
    scheduled = fields.String(required=True)


class AuditHeadSchema(Schema):
    seq = fields.Integer(required=True, metadata={"description": "Entries in the chain"})
    hash = fields.String(allow_none=True, required=True, metadata={
        "description": "The latest entry's hash"})
    recorded_at = fields.String(allow_none=True, required=True)
    algorithm = fields.String(required=True)
    signed_payload = fields.String(required=True)
    signature = fields.String(required=True)
    key = fields.Dict(required=True, metadata={"description": "The public key (JWK)"})


# --- admin: connections, sync runs, quarantine ------------------------------------------

RUN_STATUS_VALUES = ("running", "succeeded", "failed", "needs_confirmation", "discarded",
                     "superseded", "abandoned")
QUARANTINE_STATUSES = ("open", "resolved", "replayed", "dismissed")
DIFFERENCE_KINDS = ("create", "update", "remove", "rejected")
_COUNTRIES = fields.List(fields.String(validate=validate.Regexp(r"^[A-Za-z]{2}$")),
                         load_default=None, metadata={
                             "description": "ISO countries of the programme's operators this "
                                            "connection answers for (empty: all)"})
_SHARE = validate.Range(min=0, max=1)
_STALENESS = validate.Range(min=1, max=MAX_STALENESS_SECONDS)
_ID = validate.Range(min=1, max=MAX_ID)


class ConnectionCreateSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    type = fields.String(required=True, validate=validate.Length(min=1, max=64),
                         metadata={"description": "Connector name (aeo_node, csv_snapshot, "
                                                  "xml_snapshot, or a plugin)."})
    programmes = fields.List(fields.String(validate=validate.Length(min=1, max=32)),
                             required=True, validate=validate.Length(min=1, max=20))
    config = fields.Dict(keys=fields.String(), required=True, metadata={
        "description": "Connector config, validated by the connector's schema. Secret "
                       "fields are stored encrypted and never returned."})
    schedule = fields.String(required=True, validate=validate.Length(min=1, max=120),
                             metadata={"description": "interval:1h or cron:0 */6 * * *"})
    snapshot_schedule = fields.String(
        load_default=None, validate=validate.Length(min=1, max=120), metadata={
            "description": "For an incremental source: when to read it whole, so that "
                           "rows deleted at the source are removed (same syntax as "
                           "schedule; none clears it)."})
    staleness_seconds = fields.Integer(load_default=None,
                                       validate=_STALENESS)
    enabled = fields.Boolean(load_default=True)
    max_removal_share = fields.Float(load_default=None, validate=_SHARE)
    max_change_share = fields.Float(load_default=None, validate=_SHARE)
    max_quarantine_share = fields.Float(load_default=None, validate=_SHARE)
    max_quarantined = fields.Integer(load_default=None, validate=validate.Range(min=0,
                                                                                max=MAX_ID))
    scope_countries = _COUNTRIES


class ConnectionEditSchema(StrictSchema):
    config = fields.Dict(keys=fields.String(), load_default=None, metadata={
        "description": "Merged into the stored config, then validated again."})
    schedule = fields.String(load_default=None, validate=validate.Length(min=1, max=120))
    snapshot_schedule = fields.String(
        load_default=None, validate=validate.Length(min=1, max=120), metadata={
            "description": "For an incremental source: when to read it whole, so that "
                           "rows deleted at the source are removed (same syntax as "
                           "schedule; none clears it)."})
    enabled = fields.Boolean(load_default=None)
    staleness_seconds = fields.Integer(load_default=None,
                                       validate=_STALENESS)
    max_removal_share = fields.Float(load_default=None, validate=_SHARE)
    max_change_share = fields.Float(load_default=None, validate=_SHARE)
    max_quarantine_share = fields.Float(load_default=None, validate=_SHARE)
    max_quarantined = fields.Integer(load_default=None, validate=validate.Range(min=0,
                                                                                max=MAX_ID))
    scope_countries = _COUNTRIES


class ConnectionSchema(Schema):
    """A connection; secret config fields appear masked ("********") when set."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    type = fields.String(required=True)
    administration = fields.String(required=True)
    programmes = fields.List(fields.String(), required=True)
    schedule = fields.String(required=True)
    snapshot_schedule = fields.String(allow_none=True, required=True, metadata={
        "description": "When an incremental source is read whole (null: never)."})
    enabled = fields.Boolean(required=True)
    last_success_at = fields.DateTime(allow_none=True, required=True)
    feed_age_seconds = fields.Integer(allow_none=True, required=True)
    stale = fields.Boolean(required=True)
    consecutive_failures = fields.Integer(required=True)
    config = fields.Dict(required=True)
    max_removal_share = fields.Float(required=True)
    max_change_share = fields.Float(required=True)
    max_quarantine_share = fields.Float(required=True)
    max_quarantined = fields.Integer(required=True)
    scope_countries = fields.List(fields.String(), required=True)
    staleness_seconds = fields.Integer(required=True)
    last_run_at = fields.DateTime(allow_none=True, required=True)
    last_failure_at = fields.DateTime(allow_none=True, required=True)
    retry_after = fields.DateTime(allow_none=True, required=True, metadata={
        "description": "When a failing connection's backoff ends: the scheduler starts "
                       "none of its scheduled runs before (null: it is not backing off)."})
    sync_requested_at = fields.DateTime(allow_none=True, required=True, metadata={
        "description": "A sync was asked for and the scheduler has not started it yet."})


class ConnectionListSchema(Schema):
    connections = fields.List(fields.Nested(ConnectionSchema), required=True)


class SyncRequestedSchema(Schema):
    connection_id = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("requested",)))
    requested_at = fields.DateTime(required=True)


class RunSchema(Schema):
    id = fields.Integer(required=True)
    connection_id = fields.Integer(required=True)
    connection = fields.String(required=True)
    trigger = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(RUN_STATUS_VALUES))
    dry_run = fields.Boolean(required=True)
    applied = fields.Boolean(required=True, metadata={
        "description": "False for a dry run, a held one, or one discarded or superseded "
                       "while held: its counts say what it would do"})
    snapshot = fields.Boolean(required=True)
    scheduled_for = fields.DateTime(allow_none=True, required=True)
    started_at = fields.DateTime(required=True)
    finished_at = fields.DateTime(allow_none=True, required=True)
    held_reason = fields.String(allow_none=True, required=True)
    error = fields.String(allow_none=True, required=True)
    stopped_by_guard = fields.Boolean(required=True, metadata={
        "description": "A failed incremental run that its quarantine limits stopped: its "
                       "slot is not tried again (a run that failed for its source is)"})
    read = fields.Integer(required=True)
    created = fields.Integer(required=True)
    updated = fields.Integer(required=True)
    unchanged = fields.Integer(required=True)
    removed = fields.Integer(required=True)
    quarantined = fields.Integer(required=True)
    status_changes = fields.Integer(required=True)
    unread = fields.List(fields.String(), required=True, metadata={
        "description": "Source columns that nothing reads (a mapping may have missed them)"})


class RunListSchema(Schema):
    runs = fields.List(fields.Nested(RunSchema), required=True)
    next_before = fields.Integer(allow_none=True, required=True,
                                 metadata={"description": "Pass as `before` for older runs."})


class RunQuerySchema(StrictSchema):
    connection = fields.Integer(load_default=None, validate=_ID)
    status = fields.String(load_default=None, validate=validate.OneOf(RUN_STATUS_VALUES))
    before = fields.Integer(load_default=None, validate=_ID)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class QuarantinedRecordSchema(Schema):
    id = fields.Integer(required=True)
    connection_id = fields.Integer(required=True)
    connection = fields.String(required=True)
    run_id = fields.Integer(allow_none=True, required=True)
    programme = fields.String(allow_none=True, required=True)
    stable_key = fields.String(allow_none=True, required=True)
    position = fields.String(allow_none=True, required=True)
    reasons = fields.List(fields.Dict(), required=True)
    status = fields.String(required=True, validate=validate.OneOf(QUARANTINE_STATUSES))
    reason_code = fields.String(required=True)
    operator_id = fields.Integer(allow_none=True, required=True, metadata={
        "description": "The operator the record was tied to; it keeps its last good state"})
    seen_count = fields.Integer(required=True)
    last_seen_at = fields.DateTime(allow_none=True, required=True)
    created_at = fields.DateTime(required=True)
    resolved_at = fields.DateTime(allow_none=True, required=True)
    resolved_by = fields.String(allow_none=True, required=True)
    resolution_note = fields.String(allow_none=True, required=True)
    record = fields.Dict(metadata={"description": "The record as read (detail only)."})


class QuarantineListSchema(Schema):
    records = fields.List(fields.Nested(QuarantinedRecordSchema), required=True)
    next_after = fields.Integer(allow_none=True, required=True,
                                metadata={"description": "Pass as `after` for more."})


class QuarantineQuerySchema(StrictSchema):
    connection = fields.Integer(load_default=None, validate=_ID)
    status = fields.String(load_default="open", validate=validate.OneOf(QUARANTINE_STATUSES))
    after = fields.Integer(load_default=None, validate=validate.Range(min=0, max=MAX_ID))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class DifferenceQuerySchema(StrictSchema):
    kind = fields.String(required=True, validate=validate.OneOf(DIFFERENCE_KINDS))
    after = fields.String(load_default=None, validate=validate.Length(max=80))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class DifferenceSchema(Schema):
    run = fields.Integer(required=True)
    kind = fields.String(required=True)
    applied = fields.Boolean(required=True, metadata={
        "description": "False: the operators a held or dry run would change"})
    items = fields.List(fields.Dict(), required=True)
    next_after = fields.String(allow_none=True, required=True)


class ReplaySchema(StrictSchema):
    corrections = fields.Dict(keys=fields.String(), load_default=None, metadata={
        "description": "Field corrections applied before validating again."})


class DismissSchema(StrictSchema):
    note = fields.String(load_default=None,
                         validate=validate.Length(max=quarantine.NOTE_MAX_LENGTH))
