"""Changes of view are events: operators entering or leaving a client's view because a
direction started, was suspended or ended reach the change feed (and so webhooks) once.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path
from types import ModuleType

import requests
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from sqlalchemy import delete, insert, select

from hub.arrangements.service import change_status
from hub.auth import policy
from hub.db import Database
from hub.notify import views
from hub.notify.models import ViewChange, ViewGrant
from hub.registry.models import Programme
from tests.auth.hubkit import bearer, live_server, make_client, make_operator, programmes

MIGRATION = (Path(__file__).resolve().parents[2] / "hub" / "migrations" / "versions"
             / "c41f7d9e2b63_view_changes.py")


def _migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("view_changes_migration", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _changes(database: Database, recognising: str) -> list[tuple[int, str, str]]:
    with database.session_scope() as session:
        pid = session.scalar(select(Programme.id).where(Programme.code == recognising))
        return [(c.operator_id, c.kind, c.arrangement) for c in session.scalars(
            select(ViewChange).where(ViewChange.recognising_id == pid)
            .order_by(ViewChange.id))]


def test_upgrade_tombstones_what_the_former_rule_shared(ref_app: Flask,
                                                        committed_db: Database) -> None:
    """The migration's starting grants are the former rule's; the first run then writes
    tombstones for the operators of directions that rule shared wrongly (the ASEAN
    members Cambodia has not implemented the AAMRA with), and nothing else."""
    today = dt.datetime.now(dt.UTC).date()
    with committed_db.session_scope(write=True) as session:
        progs = programmes(session)
        sg = make_operator(session, progs["SG-STP"], 501, category="STP_PLUS")
        my = make_operator(session, progs["MY-AEO"], 502, category="AEO")
        eu = make_operator(session, progs["EU-AEO"], 503, category="AEOS", consent=True)
    with committed_db.engine.begin() as connection:
        connection.execute(delete(ViewGrant))
        connection.execute(insert(ViewGrant), _migration().previous_grants(connection, today))
    policy.clear_cache()
    assert views.run_daily(committed_db) is not None
    kh = _changes(committed_db, "KH-AEO")
    assert (sg, "tombstone", "ASEAN") in kh and (my, "tombstone", "ASEAN") in kh
    assert all(kind == "tombstone" for _o, kind, _a in kh)
    # Members that did start with each other lose nothing.
    assert all(o != my for o, _k, _a in _changes(committed_db, "SG-STP"))
    # CBP's view of EU AEOs was right before: no change for it.
    assert all(o != eu for o, _k, _a in _changes(committed_db, "US-CTPAT"))
    # Once announced, a second run writes nothing.
    again = views.run_daily(committed_db)
    assert again is not None and (again.tombstones, again.shared) == (0, 0)
    assert len(_changes(committed_db, "KH-AEO")) == len(kh)
    # The KH client's change feed carries the tombstones.
    with live_server(ref_app) as base:
        headers = bearer(committed_db, make_client(committed_db, "KH-AEO", "changes:read"))
        feed = requests.get(f"{base}/api/v1/changes?limit=500", headers=headers).json()
    tombstones = {(c["operator_id"], c["reason"], c["arrangement"], c["programme"])
                  for c in feed["changes"] if c["kind"] == "tombstone"}
    assert (sg, "no_longer_shared", "ASEAN", "SG-STP") in tombstones
    assert (my, "no_longer_shared", "ASEAN", "MY-AEO") in tombstones


def test_a_direction_starting_on_a_day_shares_its_operators(ref_app: Flask,
                                                            committed_db: Database) -> None:
    """EU-CA takes effect on 2025-08-01: the daily run of 2025-07-31 (after today's
    grants were announced) tombstones the EU AEO for CBSA, the run of 2025-08-01 shares it
    again; the feed gives both, in order, and a cursor taken after them gives neither."""
    views.run_daily(committed_db)  # today's grants, as the scheduler announces them
    with committed_db.session_scope(write=True) as session:
        progs = programmes(session)
        eu = make_operator(session, progs["EU-AEO"], 601, category="AEOS", consent=True)
        hidden = make_operator(session, progs["EU-AEO"], 602, category="AEOS", consent=False)
    views.run_daily(committed_db, dt.date(2025, 7, 31))
    views.run_daily(committed_db, dt.date(2025, 8, 1))
    ca = _changes(committed_db, "CA-PIP")
    assert [(o, k) for o, k, _a in ca if o == eu] == [(eu, "tombstone"), (eu, "shared")]
    assert all(o != hidden for o, _k, _a in ca)  # never visible: no consent
    with live_server(ref_app) as base:
        headers = bearer(committed_db, make_client(committed_db, "CA-PIP", "changes:read"))
        first = requests.get(f"{base}/api/v1/changes?limit=1", headers=headers).json()
        rest = requests.get(f"{base}/api/v1/changes?limit=500&cursor={first['next_cursor']}",
                            headers=headers).json()
    items = [(c["operator_id"], c["kind"]) for c in first["changes"] + rest["changes"]
             if c.get("view_change_id") is not None]
    assert items == [(eu, "tombstone"), (eu, "shared")]
    assert {c["reason"] for c in first["changes"] + rest["changes"]
            if c.get("view_change_id")} == {"no_longer_shared", "now_shared"}


def test_the_jobs_are_registered_with_the_scheduler(ref_app: Flask, committed_db: Database) -> None:
    assert "hub.notify.views:add_jobs" in ref_app.config["SCHEDULER_JOBS"]
    scheduler = BackgroundScheduler(timezone=dt.UTC)
    views.add_jobs(scheduler, committed_db)
    job = scheduler.get_job(views.JOB_ID)
    assert job is not None and job.func is views.run_daily
    assert "hour='0'" in str(job.trigger) and "minute='0'" in str(job.trigger)
    watch = scheduler.get_job(views.WATCH_JOB_ID)
    assert watch is not None and isinstance(watch.func, views.ReferenceWatch)


def test_a_suspended_arrangement_is_announced_once_the_watch_looks(ref_app: Flask,
                                                                   committed_db: Database) -> None:
    """Suspending an arrangement bumps the reference version; the scheduler's watch then
    records the tombstones at once, and looking again without a change writes nothing."""
    with committed_db.session_scope(write=True) as session:
        progs = programmes(session)
        eu = make_operator(session, progs["EU-AEO"], 801, category="AEOS", consent=True)
    assert views.run_daily(committed_db) is not None
    watch = views.ReferenceWatch(committed_db)
    assert watch() is None  # nothing changed since it started
    today = dt.datetime.now(dt.UTC).date()
    with committed_db.session_scope(write=True) as session:
        change_status(session, "EU-CA", "suspend", today)
    policy.clear_cache()
    result = watch()
    assert result is not None and result.tombstones >= 1
    assert (eu, "tombstone", "EU-CA") in _changes(committed_db, "CA-PIP")
    assert watch() is None


def test_the_command_records_the_day_once(ref_app: Flask, committed_db: Database) -> None:
    runner = ref_app.test_cli_runner()
    views.run_daily(committed_db)  # today's grants, as the scheduler announces them
    with committed_db.session_scope(write=True) as session:
        progs = programmes(session)
        eu = make_operator(session, progs["EU-AEO"], 701, category="AEOS", consent=True)
    with committed_db.session_scope(write=True) as session:
        session.execute(delete(ViewGrant).where(ViewGrant.recognising_id == progs["CA-PIP"].id))
    first = runner.invoke(args=["view-changes"])
    assert first.exit_code == 0, first.output
    assert "1 operators left views" not in first.output and "1 entered" in first.output
    assert (eu, "shared", "EU-CA") in _changes(committed_db, "CA-PIP")
    second = runner.invoke(args=["view-changes"])
    assert second.exit_code == 0 and "0 programme pairs changed" in second.output
