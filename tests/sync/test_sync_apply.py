"""Bulk apply: a creation staged in ISO form is written exactly as one holding date objects."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.orm import Session

from hub.arrangements.service import load_reference_data
from hub.registry import history
from hub.registry.models import Operator, OperatorEvent, OperatorIdentifier, Programme
from hub.registry.service import RECORD_COLUMNS, OperatorData
from hub.sync import apply

TODAY = dt.date(2026, 11, 28)
NOW = dt.datetime(2026, 11, 28, 9, 30, tzinfo=dt.UTC)


def _values(n: int, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "authorisation_number": f"DEAEOF{n:05d}/19", "trader_id_scheme": "EORI",
        "trader_id": f"DE{n:015d}", "legal_name": f"Muster {n} GmbH", "street": "Kai 1",
        "city": "Hamburg", "postcode": "20457", "region": None, "country": "DE",
        "status": "valid", "status_effective": dt.date(2019, 3, 1),
        "categories": [{"code": "AEOC", "status": "valid", "since": "2019-03-01"},
                       {"code": "AEOS", "status": "suspended", "since": "2024-05-01"}],
        "issuing_authority": "DE Hauptzollamt Hamburg", "authorised_on": dt.date(2019, 3, 1),
        "valid_from": dt.date(2019, 3, 1), "valid_until": None, "consent_share": True,
        "consent_publish": False,
        "source_changed_at": dt.datetime(2024, 2, 20, 16, 24, 46, tzinfo=dt.UTC),
        "fingerprint": f"{n:032x}", "warnings": [],
    }
    values.update(changes)
    return values


def _iso(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in values.items()}


CASES = [
    _values(1),
    _values(2, status="suspended", status_effective=dt.date(2025, 1, 10)),
    _values(3, authorised_on=None, valid_from=None, status_effective=None,
            source_changed_at=None, valid_until=dt.date(2030, 1, 1)),
    _values(4, status="revoked", status_effective=dt.date(2018, 1, 1),
            categories=[{"code": "AEOF", "status": "valid", "since": None}]),
]


@pytest.mark.parametrize("values", CASES)
def test_creation_events_are_the_same_for_iso_dates(values: dict[str, Any]) -> None:
    assert history.creation_events(_iso(values), TODAY) == history.creation_events(
        values, TODAY)


def _written(session: Session, op_id: int) -> tuple[Any, ...]:
    operator = session.get(Operator, op_id)
    assert operator is not None
    session.refresh(operator)
    row = tuple(getattr(operator, name) for name in (*RECORD_COLUMNS, "last_effective",
                                                      "created_at", "removed_at"))
    events = [(e.kind, e.effective_date, e.recorded_at, e.changes, e.previous)
              for e in session.scalars(select(OperatorEvent).where(
                  OperatorEvent.operator_id == op_id).order_by(OperatorEvent.id))]
    identifiers = sorted(session.execute(select(
        OperatorIdentifier.scheme, OperatorIdentifier.value, OperatorIdentifier.origin,
        OperatorIdentifier.linked).where(OperatorIdentifier.operator_id == op_id)).all())
    return row, events, identifiers


def test_a_creation_in_iso_form_is_stored_as_with_date_objects(session: Session) -> None:
    load_reference_data(session)
    session.flush()
    programme = session.scalars(select(Programme).where(Programme.code == "EU-AEO")).one()
    index = apply.ProgrammeIndex.load(session, programme.id)
    objects = [OperatorData(f"DE{i:015d}", v, [("EORI", f"DE{i:015d}", "declared", True)])
               for i, v in enumerate(CASES)]
    staged = [OperatorData(f"XI{i:015d}", _iso(v), [("EORI", f"DE{i:015d}", "declared", True)])
              for i, v in enumerate(CASES)]
    for records in (objects, staged):
        the_plan = apply.plan(session, index, records, TODAY)
        assert len(the_plan.creates) == len(CASES)
        apply.write(session, index, the_plan, now=NOW, source="test", run_id=None)
    session.expire_all()
    for plain, iso in zip(objects, staged, strict=True):
        assert _written(session, index.by_key[iso.stable_key].operator_id) == _written(
            session, index.by_key[plain.stable_key].operator_id)
    stored = session.get(Operator, index.by_key[staged[1].stable_key].operator_id)
    assert stored is not None
    assert stored.status_effective == dt.date(2025, 1, 10)
    assert stored.source_changed_at == dt.datetime(2024, 2, 20, 16, 24, 46, tzinfo=dt.UTC)


def test_creation_events_of_a_record_with_later_changes() -> None:
    """A record first seen with a component suspended and a status changed after its
    authorisation tells that story: valid from the start, then each later change."""
    events = history.creation_events(CASES[1], TODAY)
    assert [(e.kind, e.effective_date) for e in events] == [
        ("created", dt.date(2019, 3, 1)),
        ("categories_changed", dt.date(2024, 5, 1)),
        ("status_changed", dt.date(2025, 1, 10)),
    ]
    created, categories, status = events
    assert created.changes["status"] == "valid"
    assert created.changes["status_effective"] == "2019-03-01"
    assert created.changes["categories"] == [
        {"code": "AEOC", "status": "valid", "since": "2019-03-01"},
        {"code": "AEOS", "status": "valid", "since": "2019-03-01"},
    ]
    assert categories.changes == {"categories": CASES[1]["categories"]}
    assert categories.previous == {"categories": created.changes["categories"]}
    assert status.changes == {"status": "suspended", "status_effective": "2025-01-10"}
    assert status.previous == {"status": "valid"}


def test_bulk_writes_store_values_in_the_form_the_orm_binds(session: Session) -> None:
    """Rows written by the bulk path compare equal, in SQL, to the same values bound by
    SQLAlchemy (on SQLite that is a text comparison, so the stored form must match)."""
    load_reference_data(session)
    session.flush()
    programme = session.scalars(select(Programme).where(Programme.code == "EU-AEO")).one()
    index = apply.ProgrammeIndex.load(session, programme.id)
    records = [OperatorData("DE000000000000007", CASES[0], []),
               OperatorData("DE000000000000008", _iso(CASES[1]), [])]
    apply.write(session, index, apply.plan(session, index, records, TODAY), now=NOW,
                source="test", run_id=None)
    for data, values in zip(records, (CASES[0], CASES[1]), strict=True):
        op_id = index.by_key[data.stable_key].operator_id
        found = session.scalar(select(Operator.id).where(
            Operator.id == op_id, Operator.created_at == NOW, Operator.updated_at == NOW,
            Operator.status_effective == values["status_effective"],
            Operator.authorised_on == values["authorised_on"],
            Operator.source_changed_at == values["source_changed_at"]))
        assert found == op_id
        assert session.scalar(select(OperatorEvent.id).where(
            OperatorEvent.operator_id == op_id, OperatorEvent.recorded_at == NOW,
            OperatorEvent.effective_date == dt.date(2019, 3, 1))) is not None


@pytest.mark.parametrize("value", [
    CASES[1]["categories"], {"legal_name": "Müller & Söhne \u2028 \"Ost\"", "n": 1.5,
                             "nested": {"a": [None, True, False, -0.0, 10**20]}},
    [], {}, None, "text", ["lone \udc80 surrogate"]])
def test_bulk_json_is_the_text_the_engine_binds(value: Any, session: Session) -> None:
    """The bulk path writes a JSON column's text exactly as the engine's JSON type binds
    it (one serializer, `jsonio.dumps_text`), and it reads back as the value."""
    from hub import jsonio
    from hub.sync import bulk

    serializer = session.connection().dialect._json_serializer  # type: ignore[attr-defined]
    assert serializer is jsonio.dumps_text
    expected = None if value is None else serializer(value)
    assert bulk._json_text(value) == expected
    assert bulk._json_column([value, value]) == [expected, expected]
    assert value is None or json.loads(expected) == value


def test_bulk_json_refuses_what_json_dumps_refuses() -> None:
    from hub.sync import bulk

    with pytest.raises(TypeError, match="not JSON serializable"):
        bulk._json_text({"when": dt.date(2026, 1, 1)})


def test_bulk_timestamps_in_iso_form_are_encoded_as_the_type_binds(session: Session) -> None:
    """The shortcut for UTC ISO strings gives what the column type binds, on each backend,
    for every form a timestamp may take (object, UTC or offset ISO, with microseconds)."""
    from hub.sync import bulk

    connection = session.connection()
    column = Operator.__table__.c.source_changed_at
    process = column.type.dialect_impl(connection.dialect).bind_processor(connection.dialect)
    reference = bulk._from_iso_datetime(process or (lambda v: v))
    encode = bulk._encoder(column, connection.dialect)
    assert encode is not None
    values: list[Any] = [None]
    for seconds, micro in ((0, 0), (86_399, 1), (1_700_000_000, 999_999), (123_456, 5)):
        moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
            seconds=seconds, microseconds=micro)
        values += [moment, moment.isoformat(),
                   moment.astimezone(dt.timezone(dt.timedelta(hours=-5))).isoformat()]
    assert list(encode(values)) == [None if v is None else reference(v) for v in values]


def test_sqlite_utc_iso_timestamps_take_the_slicing_shortcut() -> None:
    """On SQLite a UTC ISO string is rewritten by slicing, without parsing it: the
    shortcut is in effect (it checks itself against the type's own encoding when built and
    stands down where they differ)."""
    from sqlalchemy.dialects.sqlite.base import DATETIME

    from hub.sync import bulk

    dialect = sqlite_dialect()
    reference = bulk._from_iso_datetime(DATETIME().bind_processor(dialect))
    parsed: list[Any] = []

    def counting(value: Any) -> Any:
        parsed.append(value)
        return reference(value)

    encode = bulk._utc_iso_as_text(counting)
    assert encode is not counting
    parsed.clear()
    for text in ("2024-02-20T16:24:46+00:00", "1999-12-31T23:59:59.000123+00:00"):
        assert encode(text) == reference(text)
    assert parsed == []
    offset = "2024-02-20T16:24:46-05:00"  # not UTC: parsed and encoded by the type
    assert encode(offset) == reference(offset)
    assert parsed == [offset]
