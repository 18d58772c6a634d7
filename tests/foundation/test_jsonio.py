"""`hub.jsonio.dumps_text`: the JSON text every JSON column stores (engine and bulk path)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import JSON, Column, Integer, MetaData, Table, Text, cast, select
from sqlalchemy.orm import Session

from hub.jsonio import dumps_text, pack, unpack

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_reads_back_as_the_value(value: Any) -> None:
    text = dumps_text(value)
    assert isinstance(text, str)
    assert json.loads(text) == value
    assert unpack(text) == value


@pytest.mark.parametrize("value", [
    ["lone \udc80 surrogate"], {"n": 10**30}, -(10**25),
])
def test_what_orjson_refuses_is_written_by_json_and_read_back_exactly(value: Any) -> None:
    """orjson would read an integer beyond 64 bits as a float: text the standard library
    wrote is marked (one leading space) and read by it again."""
    assert dumps_text(value) == " " + json.dumps(value)
    assert pack(value) == dumps_text(value).encode()
    for text in (dumps_text(value), pack(value)):
        assert json.loads(text) == value
        assert unpack(text) == value
        assert repr(unpack(text)) == repr(value)


def test_unpack_reads_unmarked_text_orjson_refuses() -> None:
    assert unpack(json.dumps(["lone \udc80"])) == ["lone \udc80"]


class Name(str):
    pass


@dataclasses.dataclass
class Point:
    x: int


@pytest.mark.parametrize("value", [
    dt.date(2026, 1, 1), dt.datetime(2026, 1, 1, tzinfo=dt.UTC), Point(1), {1, 2},
    decimal.Decimal("1.5"), {"when": dt.time(12)},
])
def test_refuses_what_json_refuses(value: Any) -> None:
    """Dates, dataclasses and sets are not JSON: refused as `json.dumps` refuses them,
    never written in a form of orjson's own."""
    with pytest.raises(TypeError):
        json.dumps(value)
    with pytest.raises(TypeError):
        dumps_text(value)


def test_subclasses_of_json_types_read_back_as_their_base_type() -> None:
    assert json.loads(dumps_text([Name("Köln")])) == ["Köln"]


def test_no_number_json_lacks_is_written_as_a_number() -> None:
    """JSON has no NaN or infinity (PostgreSQL refuses `json`'s `NaN` token): null."""
    assert dumps_text([float("nan"), float("inf")]) == "[null,null]"


def test_json_columns_store_that_text_and_read_it_back(session: Session) -> None:
    table = Table("json_probe", MetaData(), Column("id", Integer, primary_key=True),
                  Column("doc", JSON))
    connection = session.connection()
    table.create(connection)
    values = [{"legal_name": "Müller & Söhne", "codes": ["AEOF", 1, None, True]},
              ["lone \udc80 surrogate", 10**30], "text", []]
    connection.execute(table.insert(), [{"id": i, "doc": v} for i, v in enumerate(values)])
    rows = connection.execute(select(table.c.doc, cast(table.c.doc, Text))
                              .order_by(table.c.id)).all()
    assert [doc for doc, _ in rows] == values
    assert [text for _, text in rows] == [dumps_text(v) for v in values]
