"""Reference data in the database: idempotent loading, corrections, status changes."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
from sqlalchemy import func, select

from hub import versions
from hub.arrangements import service
from hub.arrangements.models import Arrangement, ArrangementDirection, ReferenceChange
from hub.arrangements.reference import default_reference_dir, load_reference
from hub.errors import InvalidInput
from hub.registry.models import Programme


def _counts(session):
    return {model.__name__: session.scalar(select(func.count()).select_from(model))
            for model in (Programme, Arrangement, ArrangementDirection, ReferenceChange)}


def test_load_is_idempotent(session):
    first = service.load_reference_data(session)
    assert first.created["programme"] >= 25
    before = _counts(session)
    version = versions.version(session, versions.REFERENCE)
    second = service.load_reference_data(session)
    assert not second.changed and second.changes == []
    assert _counts(session) == before
    assert versions.version(session, versions.REFERENCE) == version


def test_eu_us_directions_in_the_database(session):
    service.load_reference_data(session)
    eu_us = service.get_arrangement(session, "EU-US")
    by_pair = {(d.recognising.code, d.recognised.code): d for d in eu_us.directions}
    cbp = by_pair[("US-CTPAT", "EU-AEO")]
    assert sorted(cbp.categories) == ["AEOF", "AEOS"]
    assert cbp.active_from == dt.date(2012, 7, 1)
    assert by_pair[("EU-AEO", "US-CTPAT")].active_from == dt.date(2013, 1, 31)


def test_edited_date_updates_and_records_the_change(session, tmp_path):
    service.load_reference_data(session)
    edited = tmp_path / "ref"
    shutil.copytree(default_reference_dir(), edited)
    path = edited / "arrangements.yaml"
    text = path.read_text(encoding="utf-8")
    assert "in_force: 2015-11-01" in text
    text = text.replace("in_force: 2015-11-01", "in_force: 2015-11-02", 1)
    text = text.replace("{status: in_force, date: 2015-11-01}",
                        "{status: in_force, date: 2015-11-02}", 1)
    path.write_text(text, encoding="utf-8")
    version = versions.version(session, versions.REFERENCE)
    report = service.load_reference_data(session, load_reference(edited))
    assert report.changed
    assert service.get_arrangement(session, "EU-CN").in_force_on == dt.date(2015, 11, 2)
    change = session.scalars(select(ReferenceChange).where(
        ReferenceChange.code == "EU-CN", ReferenceChange.field == "in_force_on")).one()
    assert (change.old, change.new) == ("2015-11-01", "2015-11-02")
    eu_cn = service.get_arrangement(session, "EU-CN")
    assert eu_cn.status_on(dt.date(2015, 11, 1)) != "in_force"
    assert eu_cn.status_on(dt.date(2015, 11, 2)) == "in_force"
    assert versions.version(session, versions.REFERENCE) == version + 1
    assert not service.load_reference_data(session, load_reference(edited)).changed


def test_suspend_resume_terminate(session):
    service.load_reference_data(session)
    service.change_status(session, "EU-JP", "suspend", dt.date(2026, 3, 1))
    arrangement = service.get_arrangement(session, "EU-JP")
    assert arrangement.status_on(dt.date(2026, 2, 28)) == "in_force"
    assert arrangement.status_on(dt.date(2026, 3, 1)) == "suspended"
    with pytest.raises(InvalidInput, match="not suspended"):
        service.change_status(session, "EU-JP", "resume", dt.date(2026, 2, 1))
    service.change_status(session, "EU-JP", "resume", dt.date(2026, 4, 1))
    assert arrangement.status_on(dt.date(2026, 4, 1)) == "in_force"
    service.change_status(session, "EU-JP", "terminate", dt.date(2026, 5, 1))
    with pytest.raises(InvalidInput, match="terminated"):
        service.change_status(session, "EU-JP", "suspend", dt.date(2026, 6, 1))
    # a re-load keeps the manual history
    service.load_reference_data(session)
    assert arrangement.status_on(dt.date(2026, 5, 2)) == "terminated"


def test_cli_reference_load_and_lists(runner):
    first = runner.invoke(args=["reference", "load"])
    assert first.exit_code == 0, first.output
    assert "created" in first.output
    again = runner.invoke(args=["reference", "load"])
    assert "reference data unchanged" in again.output
    listed = runner.invoke(args=["arrangements", "list", "--programme", "US-CTPAT",
                                 "--date", "2012-12-01"])
    assert "US-CTPAT recognises EU-AEO AEOS,AEOF (import) from 2012-07-01 [active]" in (
        listed.output)
    assert "EU-AEO recognises US-CTPAT" in listed.output and "[inactive]" in listed.output
    suspended = runner.invoke(args=["arrangements", "suspend", "EU-US", "--date", "2026-01-01"])
    assert suspended.exit_code == 0 and "suspended from 2026-01-01" in suspended.output
    unknown = runner.invoke(args=["arrangements", "suspend", "XX-YY", "--date", "2026-01-01"])
    assert unknown.exit_code == 1 and "XX-YY does not exist" in unknown.output
    programmes = runner.invoke(args=["programmes", "list"])
    assert "EU-AEO" in programmes.output and "key=EORI" in programmes.output


def test_cli_reports_file_entry_and_field(runner, tmp_path):
    broken = tmp_path / "ref"
    shutil.copytree(default_reference_dir(), broken)
    path = broken / "arrangements.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "categories: [AEOS, AEOF]", "categories: [AEOX, AEOF]", 1), encoding="utf-8")
    result = runner.invoke(args=["reference", "load", "--dir", str(broken)])
    assert result.exit_code == 1
    assert "arrangements.yaml" in result.output and "AEOX" in result.output
    assert "categories" in result.output


def test_signed_and_in_force_on_one_day_reads_in_force(session):
    service.load_reference_data(session)
    for arrangement in service.list_arrangements(session):
        history = arrangement.statuses
        same_day = [day for day, status in history if status == "in_force"
                    and any(s == "signed" and d == day for d, s in history)]
        for day in same_day:
            assert arrangement.status_on(day) != "signed", arrangement.code
