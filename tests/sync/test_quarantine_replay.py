"""Replaying a quarantined record never applies what the hub could not read: lost
characters stay refused until corrected, corrections name real fields, and a category or
identifier list is read as a feed writes it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hub import db
from hub.errors import InvalidInput
from hub.sync import connections as conns
from hub.sync import quarantine
from hub.sync.models import QuarantinedRecord
from tests.sync.feeds import eu_row, write_feed
from tests.sync.test_sync_engine import operators, sync


def _entry(app) -> int:
    with app.app_context():
        return db.session().scalars(select(QuarantinedRecord.id)).one()


def _replay(app, record_id: int, corrections=None) -> None:
    with app.app_context():
        session = db.session()
        try:
            quarantine.replay(session, record_id, corrections)
            session.commit()
        finally:
            session.rollback()


def test_a_nul_is_never_replayed_as_a_replacement_character(hub_app, feed, connection_id):
    rows = [eu_row(i) for i in range(1, 6)]
    write_feed(feed, rows)
    sync(hub_app, connection_id)
    rows[1] = eu_row(2, city="Ham\x00burg", legal_name="Muster Logistik Zwei GmbH")
    write_feed(feed, rows)
    assert sync(hub_app, connection_id).counts["quarantined"] == 1
    entry = _entry(hub_app)
    with pytest.raises(InvalidInput, match="city: holds U\\+FFFD"):
        _replay(hub_app, entry)  # stored as "Ham\ufffdburg"
    with pytest.raises(InvalidInput, match="city: holds U\\+FFFD"):
        _replay(hub_app, entry, {"legal_name": "Muster Logistik Zwei GmbH"})
    assert operators(hub_app)["DE000000000000002"].city == "Hamburg"
    _replay(hub_app, entry, {"city": "Hamburg-Altona"})
    operator = operators(hub_app)["DE000000000000002"]
    assert (operator.city, operator.legal_name) == ("Hamburg-Altona",
                                                    "Muster Logistik Zwei GmbH")


def test_text_the_source_could_not_decode_stays_refused(hub_app, feed, connection_id):
    rows = [eu_row(i, city="München") for i in range(1, 4)]
    write_feed(feed, rows)
    sync(hub_app, connection_id)
    text = feed.read_text(encoding="utf-8")
    feed.write_bytes(text.replace("Muster Logistik 3 GmbH", "Muster Logistik 3 AG")
                     .encode("latin-1"))  # every row's city is now undecodable
    run = sync(hub_app, connection_id)  # fewer than 20 refused: not held
    assert (run.status, run.counts["quarantined"]) == ("succeeded", 3)
    with hub_app.app_context():
        session = db.session()
        ids = session.scalars(select(QuarantinedRecord.id)).all()
        assert len(ids) == 3
    with pytest.raises(InvalidInput, match="'nosuchfield': not a field of a record"):
        _replay(hub_app, ids[2], {"nosuchfield": "1"})
    with pytest.raises(InvalidInput, match="city: holds U\\+FFFD"):
        _replay(hub_app, ids[2], {"legal_name": "Muster Logistik 3 AG"})
    assert {o.city for o in operators(hub_app).values()} == {"München"}
    _replay(hub_app, ids[2], {"city": "München", "legal_name": "Muster Logistik 3 AG"})
    assert operators(hub_app)["DE000000000000003"].legal_name == "Muster Logistik 3 AG"


def test_a_category_correction_is_read_as_a_feed_writes_it(hub_app, feed, connection_id):
    rows = [eu_row(i) for i in range(1, 6)]
    write_feed(feed, rows)
    sync(hub_app, connection_id)
    rows[3] = eu_row(4, categories="AEOX:valid:2020-01-01")
    write_feed(feed, rows)
    sync(hub_app, connection_id)
    entry = _entry(hub_app)
    with pytest.raises(InvalidInput, match=r"categories: .*matches none of the date formats"):
        _replay(hub_app, entry, {"categories": "AEOC:valid:first of May"})
    with pytest.raises(InvalidInput, match="categories: expected text"):
        _replay(hub_app, entry, {"categories": 7})
    assert len(operators(hub_app)["DE000000000000004"].categories) == 2
    _replay(hub_app, entry, {"categories": "AEOC:valid:2020-01-01|AEOS:suspended:2024-05-01"})
    assert operators(hub_app)["DE000000000000004"].categories == [
        {"code": "AEOC", "status": "valid", "since": "2020-01-01"},
        {"code": "AEOS", "status": "suspended", "since": "2024-05-01"}]


def test_a_replacement_character_in_a_feed_is_refused(hub_app, feed, connection_id):
    write_feed(feed, [eu_row(1), eu_row(2, legal_name="M\ufffdller GmbH")])
    run = sync(hub_app, connection_id)
    assert (run.counts["created"], run.counts["quarantined"]) == (1, 1)
    with hub_app.app_context():
        entry = db.session().scalars(select(QuarantinedRecord)).one()
        assert entry.reasons[0]["code"] == "undecodable"
        assert entry.reasons[0]["field"] == "legal_name"


def test_a_broken_row_names_the_connectors_finding_before_its_programme(
        hub_app, feed, connection_id):
    """An unclosed quote swallows the lines after it into one field: the row has too few
    columns, and its "programme" is whatever text landed there. The connector's finding
    comes first; the programme is shown cut, on one line."""
    write_feed(feed, [eu_row(13, programme="EU-A\x00EO")]  # PostgreSQL holds no NUL
               + [eu_row(i) for i in range(1, 13)])
    lines = feed.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[4] = '"' + lines[4]
    feed.write_text("".join(lines), encoding="utf-8")
    run = sync(hub_app, connection_id)
    assert (run.status, run.counts["quarantined"]) == ("succeeded", 2), run.error
    with hub_app.app_context():
        other, entry = db.session().scalars(select(QuarantinedRecord).order_by(
            QuarantinedRecord.id)).all()
    assert other.programme == "EU-A\ufffdEO" and other.reason_code == "unknown_programme"
    first, *_, last = entry.reasons
    assert first["code"] == "format" and "columns, expected 21" in first["reason"], first
    assert last["code"] == "unknown_programme", entry.reasons
    assert len(last["reason"]) < 200, last


def test_the_list_pages_and_says_when_more_remain(hub_app, feed, connection_id):
    write_feed(feed, [eu_row(i) for i in range(1, 31)]
               + [eu_row(i, status="sleeping\nsoundly") for i in range(31, 36)])
    assert sync(hub_app, connection_id).counts["quarantined"] == 5
    runner = hub_app.test_cli_runner()
    seen: list[str] = []
    after: list[str] = []
    for _ in range(3):
        result = runner.invoke(args=["quarantine", "list", "--limit", "2", *after])
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert len(lines) <= 2 and all("is not a status" in line for line in lines)
        seen += [line.split()[0] for line in lines]
        more = [line for line in result.stderr.splitlines() if line.startswith("more")]
        if not more:
            break
        after = ["--after", more[0].split()[-1]]
    assert len(seen) == len(set(seen)) == 5 and not more
    bad = runner.invoke(args=["quarantine", "list", "--limit", "0"])
    assert bad.exit_code == 2 and "--limit" in bad.output


def test_a_replay_keeps_to_its_connections_scope(hub_app, feed, connection_id):
    with hub_app.app_context():
        session = db.session()
        conns.edit_connection(session, conns.SyncSettings.from_config(hub_app.config),
                              conns.get_connection(session, connection_id),
                              scope_countries=["DE"])
        session.commit()
    write_feed(feed, [eu_row(1), eu_row(2, country="FR")])
    assert sync(hub_app, connection_id).counts["quarantined"] == 1
    entry = _entry(hub_app)
    with pytest.raises(InvalidInput, match="FR is outside this connection's scope"):
        _replay(hub_app, entry)
    assert "DE000000000000002" not in operators(hub_app)
    _replay(hub_app, entry, {"country": "DE"})
    assert operators(hub_app)["DE000000000000002"].country == "DE"


def test_a_dismissal_keeps_a_note_of_at_most_2000_characters(hub_app, feed, connection_id):
    write_feed(feed, [eu_row(1), eu_row(2, status="sleeping")])
    sync(hub_app, connection_id)
    entry = _entry(hub_app)
    with hub_app.app_context():
        session = db.session()
        with pytest.raises(InvalidInput, match="the note has 2,001 characters"):
            quarantine.dismiss(session, entry, note="x" * 2001)
        session.rollback()
        quarantine.dismiss(session, entry, note="x" * 2000)
        session.commit()
        row = session.get(QuarantinedRecord, entry)
        assert row is not None and row.status == "dismissed"
