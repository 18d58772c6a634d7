"""`DriverQuery`: the hot reads on the driver's cursor give what `Session.execute` gives."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Column, String, bindparam, exists, func, select, text

from hub import db
from hub.db import CURSOR_KEY, DriverQuery, JoinedQuery, ListQuery
from hub.registry.models import Operator, OperatorEvent, Programme
from tests.auth.hubkit import load_reference, make_operator, programmes


@pytest.fixture
def operators(committed_db):
    load_reference(committed_db)
    with committed_db.session_scope(write=True) as session:
        eu = programmes(session)["EU-AEO"]
        ids = [make_operator(session, eu, n, category="AEOF",
                             now=dt.datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC))
               for n in (1, 2)]
    return ids


# Columns of every kind the hot paths read: text, integers, booleans (and a literal
# compared with IS), JSON, dates, timezone-aware timestamps, an EXISTS subquery.
STATEMENT = (
    select(Operator.id, Operator.legal_name, Operator.consent_share, Operator.categories,
           Operator.authorised_on, Operator.updated_at, Programme.code,
           Programme.data_version,
           exists().where(OperatorEvent.operator_id == Operator.id,
                          OperatorEvent.kind == "created").label("has_created"))
    .join(Programme, Programme.id == Operator.programme_id)
    .where(Operator.trader_id == bindparam("value"), Operator.consent_share.is_(True))
)


def test_rows_equal_those_of_session_execute(committed_db, operators):
    query = DriverQuery(STATEMENT)
    with committed_db.session_scope() as session:
        value = session.get(Operator, operators[0]).trader_id
        expected = session.execute(STATEMENT, {"value": value}).all()
        got = query.rows(session, {"value": value})
    assert len(got) == 1 and tuple(got[0]) == tuple(expected[0])
    row = got[0]
    assert row.id == operators[0] and row.has_created == expected[0].has_created
    assert row.has_created  # the operator has its creation event
    assert row.categories == [{"code": "AEOF", "status": "valid", "since": "2020-01-01"}]
    assert row.authorised_on == dt.date(2020, 1, 1)
    assert row.updated_at.tzinfo is not None
    assert row._mapping == dict(expected[0]._mapping)
    with pytest.raises(AttributeError):
        row.no_such_column  # noqa: B018


def test_pending_changes_are_flushed_first(committed_db, operators):
    query = DriverQuery(STATEMENT)
    with committed_db.session_scope() as session:
        operator = session.get(Operator, operators[1])
        operator.legal_name = "Renamed Trading"
        assert query.rows(session, {"value": operator.trader_id})[0].legal_name == (
            "Renamed Trading")
        session.rollback()


def test_expanding_parameters_are_refused(committed_db):
    query = DriverQuery(select(Operator.id).where(
        Operator.id.in_(bindparam("ids", expanding=True))))
    with committed_db.session_scope() as session, pytest.raises(ValueError):
        query.rows(session, {"ids": [1, 2]})


def test_an_unlabelled_computed_column_is_refused_and_a_labelled_one_read(committed_db,
                                                                          operators):
    with committed_db.session_scope() as session:
        for unnamed in (func.count(Operator.id), func.count(Operator.id).label(None),
                        Column("legal_name", String, key="name")):
            with pytest.raises(ValueError, match="label"):
                DriverQuery(select(unnamed).select_from(Operator)).rows(session)
        query = DriverQuery(select(func.count(Operator.id).label("operators")))
        assert query.rows(session)[0].operators == 2


def test_a_request_reader_reads_on_its_own_pooled_connection(app, committed_db, operators):
    """A request's reader runs DriverQuery reads on a pooled driver connection of its own
    (in autocommit), and gives it back as it found it when the request ends."""
    query = DriverQuery(STATEMENT)
    with app.test_request_context("/"):
        reader = db.reader()
        with committed_db.session_scope() as session:
            value = session.get(Operator, operators[0]).trader_id
        assert query.rows(reader, {"value": value})[0].id == operators[0]
        raw = reader.info[db.DRIVER_KEY]
        driver = raw.driver_connection
        assert not reader.in_transaction()  # the session itself holds no connection
        if committed_db.dialect == "postgresql":
            assert driver.autocommit is True
    assert db.DRIVER_KEY not in reader.info
    if committed_db.dialect == "postgresql":
        assert driver.autocommit is False  # back in the pool as it was
        with committed_db.session_scope() as session:  # pooled sessions still transact
            moments = [session.execute(text("select now()")).scalar() for _ in range(2)]
            assert moments[0] == moments[1]


def test_joined_query_gives_each_part_its_own_rows(committed_db, operators):
    """One statement for a one-row lookup and an independent read: each part's rows as
    its own `DriverQuery` gives them, the second part empty when it finds nothing, and
    nothing at all when the first finds nothing."""
    first = DriverQuery(select(Programme.id, Programme.code, Programme.data_version)
                        .where(Programme.code == bindparam("code")))
    then = DriverQuery(STATEMENT)
    joined = JoinedQuery(first, then)
    with committed_db.session_scope() as session:
        value = session.get(Operator, operators[0]).trader_id
        got_first, got_then = joined.rows(session, {"code": "EU-AEO", "value": value})
        assert got_first == first.rows(session, {"code": "EU-AEO"})[0]
        assert got_first.code == "EU-AEO"
        assert got_then == then.rows(session, {"value": value}) and len(got_then) == 1
        assert got_then[0].has_created and got_then[0]._mapping == (
            then.rows(session, {"value": value})[0]._mapping)
        assert joined.rows(session, {"code": "EU-AEO", "value": "unknown"}) == (got_first, [])
        assert joined.rows(session, {"code": "NO-SUCH", "value": value}) == (None, [])


def test_joined_query_refuses_a_first_part_of_several_rows(committed_db, operators):
    joined = JoinedQuery(DriverQuery(select(Programme.code)),
                         DriverQuery(select(Operator.id)))
    with committed_db.session_scope() as session, pytest.raises(ValueError):
        joined.rows(session, {})


def test_the_kept_cursor_follows_its_driver_connection(committed_db, operators):
    """One cursor is kept per driver connection; a replaced connection gets its own."""
    query = DriverQuery(STATEMENT)
    session = committed_db.sessionmaker()
    value = session.get(Operator, operators[0]).trader_id
    first = query.rows(session, {"value": value})
    pooled = session.connection().connection
    kept = pooled.info[CURSOR_KEY]
    assert query.rows(session, {"value": value}) == first
    assert pooled.info[CURSOR_KEY] is kept and kept[0] is pooled.driver_connection
    session.connection().invalidate()
    session.close()
    with committed_db.session_scope() as session:
        assert query.rows(session, {"value": value}) == first
        pooled = session.connection().connection
        assert pooled.info[CURSOR_KEY][0] is pooled.driver_connection
        assert pooled.info[CURSOR_KEY][1] is not kept[1]


def test_list_query_gives_the_rows_of_an_expanding_in(committed_db, operators):
    """A list bound as one parameter (an array on PostgreSQL, JSON on SQLite) selects what
    `IN` with one parameter per value selects: for text and integer columns, an empty
    list, repeated values and more values than SQLite allows parameters."""
    base = select(Operator.id, Operator.trader_id).order_by(Operator.id)
    by_value = ListQuery(base, Operator.trader_id, "values")
    by_id = ListQuery(base, Operator.id, "ids")
    with committed_db.session_scope() as session:
        values = [session.get(Operator, i).trader_id for i in operators]
        noise = [f"XX{n:015d}" for n in range(40_000)]
        for listed in ([], values[:1], values, [*values, *values], [*noise, values[1]]):
            expected = session.execute(base.where(Operator.trader_id.in_(listed))).all()
            assert [tuple(r) for r in by_value.rows(session, {"values": listed})] == [
                tuple(r) for r in expected]
        assert [r.trader_id for r in by_id.rows(session, {"ids": [operators[1], 10**9]})] == [
            values[1]]
        assert by_id.rows(session, {"ids": []}) == []


def test_a_row_view_reads_the_row_by_column_name(committed_db, operators):
    query = DriverQuery(STATEMENT)
    with committed_db.session_scope() as session:
        value = session.get(Operator, operators[0]).trader_id
        row = query.rows(session, {"value": value})[0]
    view = row._mapping
    assert view["legal_name"] == row.legal_name and view.get("code") == "EU-AEO"
    assert view.get("no_such_column") is None and view.get("no_such_column", 1) == 1
    assert list(view) == list(row._fields) and len(view) == len(row)
    with pytest.raises(KeyError):
        view["no_such_column"]
