"""Staged snapshot batches: the orjson codec stores plain JSON, and a staged record reads
back as the record it was (dates and timestamps in their ISO form until the switch)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from sqlalchemy import Column, Integer, MetaData, Table, Text, cast, select
from sqlalchemy.orm import Session

from hub.registry.service import OperatorData
from hub.sync import engine
from hub.sync.models import PackedJSON
from tests.sync.test_sync_apply import CASES, _iso


def _data(values: dict[str, Any]) -> OperatorData:
    return OperatorData(values["trader_id"], dict(values),
                        [("EORI", values["trader_id"], "declared", True),
                         ("MID", "DEMUSHAM1234HAM", "declared", False)])


def _reread(entry: Any) -> Any:
    """A staged entry as it comes back from the database."""
    return orjson.loads(orjson.dumps(entry))


@pytest.mark.parametrize("values", CASES)
def test_a_staged_record_reads_back_as_it_was(values: dict[str, Any]) -> None:
    data = _data(values)
    staged = _reread(engine._data_to_staged("EU-AEO", data))
    assert isinstance(staged, list)  # the compact form
    assert engine._staged_entry(staged) == ("EU-AEO", data)
    assert engine._staged_entry(staged, as_staged=True)[0] == "EU-AEO"
    as_staged = engine._staged_entry(staged, as_staged=True)[1]
    assert as_staged == OperatorData(data.stable_key, _iso(values), data.identifiers)
    assert _reread(engine._data_to_json(data)) == {
        "stable_key": data.stable_key, "values": as_staged.values,
        "identifiers": [list(i) for i in data.identifiers]}


def test_values_in_another_order_or_with_other_names_stage_alike() -> None:
    values = CASES[1]
    shuffled = _data(dict(reversed(values.items())))
    assert _reread(engine._data_to_staged("EU-AEO", shuffled)) == _reread(
        engine._data_to_staged("EU-AEO", _data(values)))
    extra = _data({**values, "note": "kept"})
    staged = _reread(engine._data_to_staged("EU-AEO", extra))
    assert isinstance(staged, dict)  # the dict form keeps every value
    assert engine._staged_entry(staged) == ("EU-AEO", extra)


def test_the_packed_column_holds_json_any_reader_parses(session: Session) -> None:
    table = Table("packed_json_probe", MetaData(), Column("id", Integer, primary_key=True),
                  Column("upserts", PackedJSON))
    connection = session.connection()
    table.create(connection)
    upserts = [engine._data_to_staged("EU-AEO", _data(v)) for v in CASES]
    upserts.append({"programme": "EU-AEO", "stable_key": "k", "values": {"é": "Köln"},
                    "identifiers": []})
    connection.execute(table.insert(), [{"id": 1, "upserts": upserts}])
    stored = connection.scalar(select(table.c.upserts))
    assert stored == _reread(upserts)
    text = connection.scalar(select(cast(table.c.upserts, Text)))
    assert json.loads(text) == stored


def test_what_orjson_refuses_is_packed_by_json() -> None:
    from hub.sync.models import _packed, _unpacked

    value = [{"legal_name": "Lone \udc80 surrogate"}, 10**30, None, "é"]
    assert json.loads(_packed(value)) == value
    assert _unpacked(_packed(value).decode()) == value
    assert _unpacked(_packed(["é", 1]).decode()) == ["é", 1]
    # an integer beyond 64 bits alone (orjson would read it back as a float)
    big = [{"n": 10**30}, -(10**25)]
    assert repr(_unpacked(_packed(big))) == repr(big)
    assert repr(_unpacked(_packed(big).decode())) == repr(big)
