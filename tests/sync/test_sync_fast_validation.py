"""The plain-Python fast path of record validation agrees with the marshmallow schema.

`fast_load` may refuse a record (marshmallow then decides), but whatever it accepts must be
exactly what `RecordSchema().load` returns, and `validate_record` must give the same
result (data or every rejection reason) with and without it. On records shaped like the
connectors' output, fast path and marshmallow also agree on accept/reject.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from connectors.base import CanonicalRecord, CategoryEntry, IdentifierEntry
from hub.registry.service import OperatorData
from hub.sync import validate
from hub.sync.validate import (
    ProgrammeRules,
    Rejection,
    fast_load,
    record_to_dict,
    validate_canonical,
    validate_record,
)

RULES = ProgrammeRules("EU-AEO", "EORI", "EORI", "EU_AEO", frozenset({"AEOC", "AEOS", "AEOF"}))

DATES = st.sampled_from([
    "2019-03-01", "2024-02-29", "2023-02-29", "2019-3-1", "2019-13-01", "20190301",
    "2019-03-01 ", "", "yesterday", "\uff12\uff10\uff11\uff19-03-01", "2019-03-01\n",
    "0000-01-01", "9999-12-31",
])
DATETIMES = st.sampled_from([
    "2024-01-01T00:00:00Z", "2024-01-01T00:00:00", "2024-01-01 10:30+02:00",
    "2024-01-01T10:30:00.123456-0500", "2024-01-01T25:00:00Z", "2024-01-01", "",
    "2024-02-30T00:00:00Z", "now",
])
FLAGS = st.sampled_from(["true", "false", "True", " yes ", "N", "1", "0", "t", "f", "maybe",
                         "", "on"])
STATUSES = st.sampled_from(["valid", "Valid", " suspended ", "REVOKED", "annulled", "expired",
                            "withdrawn", "unknown", "", "valid\n"])
COUNTRIES = st.sampled_from(["DE", "de", " fr ", "DEU", "D1", "", "\u00df", "e\u0301",
                             "NL\n", "xx"])
CATEGORY_CODES = st.sampled_from(["AEOC", "AEOS", "AEOF", "XYZ", "", "A" * 33])


def _text(max_size: int) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["", " ", "Hamburg"]),
                     st.text(max_size=max_size), st.just("x" * (max_size + 1)))


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def _mostly(usual: Any, unusual: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`usual` nine times in ten, else a draw from `unusual` (so most records pass)."""
    return st.integers(0, 9).flatmap(lambda i: st.just(usual) if i else unusual)


@st.composite
def categories(draw: st.DrawFn, wild: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"code": draw(_mostly("AEOC", _maybe(CATEGORY_CODES))),
                            "status": draw(_mostly("valid", _maybe(STATUSES))),
                            "since": draw(_mostly("2019-03-01", _maybe(DATES)))}
    if wild:
        if draw(st.integers(0, 4)) == 0:
            item.pop(draw(st.sampled_from(sorted(item))))
        if draw(st.integers(0, 4)) == 0:
            item["extra"] = "x"
        if draw(st.integers(0, 4)) == 0:
            item["code"] = draw(st.sampled_from([1, b"AEOC", ["AEOC"]]))
    return item


@st.composite
def identifiers(draw: st.DrawFn, wild: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "scheme": draw(_mostly("MID", _maybe(st.sampled_from(
            ["LEI", "mid", "FOO", "", "X" * 33])))),
        "value": draw(_mostly("USDHLEXP1304ERL", _maybe(st.sampled_from(
            ["bad value", "", "V" * 65, "529900T8BM49AURSDO55"])))),
        "linked": draw(st.booleans()),
    }
    if wild:
        if draw(st.integers(0, 4)) == 0:
            item.pop(draw(st.sampled_from(sorted(item))))
        if draw(st.integers(0, 4)) == 0:
            item["linked"] = draw(st.sampled_from(["true", 1, None, "no"]))
        if draw(st.integers(0, 4)) == 0:
            item["note"] = "x"
    return item


@st.composite
def records(draw: st.DrawFn, wild: bool = False) -> dict[str, Any]:
    """A raw record as `record_to_dict` gives it; `wild` adds wrong types and missing keys."""
    n = draw(st.integers(min_value=0, max_value=10**15 - 1))
    raw: dict[str, Any] = {
        "programme": draw(_mostly("EU-AEO", st.sampled_from(["US-CTPAT", ""]))),
        "authorisation_number": draw(_mostly(f"DEAEOF{n % 100000:05d}", _text(64))),
        "trader_id_scheme": draw(_mostly("EORI", st.sampled_from(["USCC", "", "eori"]))),
        "trader_id": draw(_mostly(f"DE{n:015d}", _text(64))),
        "legal_name": draw(_mostly(f"Muster {n} GmbH", _text(300))),
        "street": draw(_mostly(f"Hafenstrasse {n}", _maybe(_text(300)))),
        "city": draw(_mostly("Hamburg", _maybe(_text(120)))),
        "postcode": draw(_mostly("20457", _maybe(_text(32)))),
        "region": draw(_mostly(None, _text(64))),
        "country": draw(_mostly("DE", _maybe(COUNTRIES))),
        "status": draw(_mostly("valid", _maybe(STATUSES))),
        "status_effective": draw(_mostly("2019-03-01", _maybe(DATES))),
        "authorised_on": draw(_mostly("2019-03-01", _maybe(DATES))),
        "valid_from": draw(_mostly(None, DATES)),
        "valid_until": draw(_mostly(None, DATES)),
        "issuing_authority": draw(_mostly("DE Hauptzollamt", _maybe(_text(200)))),
        "categories": draw(st.lists(categories(wild), max_size=3)),
        "identifiers": draw(st.lists(identifiers(wild), max_size=2)),
        "consent_share": draw(_mostly(True, st.one_of(st.none(), st.booleans(), FLAGS))),
        "consent_publish": draw(_mostly(False, st.one_of(st.none(), st.booleans(), FLAGS))),
        "changed_at": draw(_mostly("2024-01-01T00:00:00Z", _maybe(DATETIMES))),
        "fingerprint": "f" * 32,
        "position": "line 2",
        "problems": [],
    }
    for name in ("programme", "trader_id", "legal_name", "authorisation_number"):
        if draw(st.integers(0, 19)) == 0:
            raw[name] = None
    if wild:
        for _ in range(draw(st.integers(0, 2))):
            name = draw(st.sampled_from(sorted(raw)))
            choice = draw(st.integers(0, 3))
            if choice == 0:
                del raw[name]
            else:
                raw[name] = draw(st.sampled_from([
                    1, 0, 2.5, b"DE", ["x"], {"a": 1}, dt.date(2020, 1, 1), True, ()]))
        if isinstance(raw.get("categories"), list) and draw(st.booleans()):
            raw["categories"] = tuple(raw["categories"])
    return raw


def _marshmallow(raw: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return validate._SCHEMA.load(raw)
    except ValidationError:
        return None


def _outcome(result: Any) -> Any:
    if isinstance(result, Rejection):
        return ("rejected", result.reasons, result.stable_key)
    return ("accepted", result.stable_key, result.values, result.identifiers)


def _without_fast_path(raw: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as patch:
        patch.setattr(validate, "fast_load", lambda _raw: None)
        return validate_record(raw, RULES)


SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


@SETTINGS
@given(records())
def test_fast_path_and_marshmallow_agree_on_plain_records(raw: dict[str, Any]) -> None:
    fast_raw, slow_raw = copy.deepcopy(raw), copy.deepcopy(raw)
    fast = fast_load(fast_raw)
    slow = _marshmallow(slow_raw)
    assert (fast is None) == (slow is None)
    assert fast == slow
    assert fast_raw == slow_raw  # the same in-place normalisation (pre_load)


@SETTINGS
@given(records(wild=True))
def test_whatever_the_fast_path_accepts_marshmallow_loads_the_same(raw: dict[str, Any]) -> None:
    fast_raw, slow_raw = copy.deepcopy(raw), copy.deepcopy(raw)
    fast = fast_load(fast_raw)
    slow = _marshmallow(slow_raw)
    if fast is not None:
        assert slow == fast
    assert fast_raw == slow_raw


@SETTINGS
@given(raw=st.one_of(records(), records(wild=True)))
def test_validate_record_is_the_same_with_and_without_fast_path(
        raw: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    fast_raw, slow_raw = copy.deepcopy(raw), copy.deepcopy(raw)
    try:
        fast = _outcome(validate_record(fast_raw, RULES))
    except Exception as exc:  # a malformed raw record may break both paths alike
        fast = ("raised", type(exc))
    try:
        slow = _outcome(_without_fast_path(slow_raw, monkeypatch))
    except Exception as exc:
        slow = ("raised", type(exc))
    assert fast == slow
    assert fast_raw == slow_raw


def test_a_usual_record_takes_the_fast_path() -> None:
    raw = {
        "programme": "EU-AEO", "authorisation_number": "DEAEOF00001/19",
        "trader_id_scheme": "EORI", "trader_id": "DE000000000000001",
        "legal_name": "Muster GmbH", "street": None, "city": "Hamburg", "postcode": "20457",
        "region": None, "country": "de", "status": "Valid", "status_effective": "2019-03-01",
        "categories": [{"code": "AEOC", "status": "valid", "since": "2019-03-01"}],
        "authorised_on": "2019-03-01", "valid_from": None, "valid_until": None,
        "issuing_authority": None,
        "identifiers": [{"scheme": "MID", "value": "DEMUSGMB1HAM", "linked": True}],
        "consent_share": True, "consent_publish": "no", "changed_at": "2024-01-01T00:00:00Z",
        "fingerprint": "abc", "position": "line 2", "problems": [],
    }
    data = fast_load(raw)
    assert data is not None
    assert data["country"] == "DE" and raw["country"] == "DE"
    assert data["status"] == "valid"
    assert data["status_effective"] == dt.date(2019, 3, 1)
    assert data["consent_publish"] is False
    assert data["changed_at"] == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert data == _marshmallow(dict(raw))


def _canonical(raw: dict[str, Any]) -> CanonicalRecord:
    """A CanonicalRecord carrying what a (possibly odd) raw record holds."""
    values = {k: v for k, v in raw.items() if k not in ("categories", "identifiers", "problems")}

    def entries(items: Any, build: Any) -> Any:
        if not isinstance(items, list | tuple):
            return items
        return tuple(build(i) if isinstance(i, dict) else i for i in items)

    return CanonicalRecord(
        **values,
        categories=entries(raw.get("categories", ()), lambda c: CategoryEntry(
            c.get("code"), c.get("status"), c.get("since"))),
        identifiers=entries(raw.get("identifiers", ()), lambda i: IdentifierEntry(
            i.get("scheme"), i.get("value"), i.get("linked"))),
        problems=entries(raw.get("problems") or (), lambda p: p),  # a wild value as it is
    )


def _attempt(call: Any) -> Any:
    try:
        return call()
    except Exception as exc:  # a malformed record may break a path
        return ("raised", type(exc))


@SETTINGS
@given(raw=st.one_of(records(), records(wild=True)), problem=st.booleans())
def test_validate_canonical_gives_what_validate_record_gives(
        raw: dict[str, Any], problem: bool) -> None:
    raw = {k: v for k, v in raw.items() if k in CanonicalRecord.__slots__}
    if problem:
        raw["problems"] = ["line 2: 20 columns, expected 21"]
    record = _canonical(raw)
    fast = _attempt(lambda: validate_canonical(record, RULES))
    slow = _attempt(lambda: _outcome(validate_record(record_to_dict(record), RULES)))
    if isinstance(fast, tuple):  # the fast path fails only where the full path does
        assert slow[0] == "raised"
    elif fast is not None:  # whatever the fast path accepts, the full path gives the same
        assert _outcome(fast) == slow
    if problem:  # a record with problems is always left to the full path
        assert fast is None


def test_a_usual_canonical_record_takes_the_fast_path() -> None:
    record = CanonicalRecord(
        programme="EU-AEO", authorisation_number="DEAEOF00001/19", trader_id_scheme="EORI",
        trader_id="DE000000000000001", legal_name=" Muster GmbH ", city="Hamburg",
        country="de", status="Valid", status_effective="2019-03-01",
        categories=(CategoryEntry("AEOS", "valid", "2019-03-01"),
                    CategoryEntry("AEOC", "valid", None)),
        identifiers=(IdentifierEntry("MID", "DEMUSGMB1HAM", True),),
        consent_share=True, consent_publish="no", changed_at="2024-01-01T00:00:00Z",
        fingerprint="abc", position="line 2")
    fast = validate_canonical(record, RULES)
    assert isinstance(fast, OperatorData)
    assert _outcome(fast) == _outcome(validate_record(record_to_dict(record), RULES))
