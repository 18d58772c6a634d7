"""The dashboard through Flask's test client, on SQLite and PostgreSQL: sign-in, CSRF,
what each kind of user sees, held runs, quarantine, charts, and the users CLI."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from itsdangerous import BadSignature
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import clock, db, usage
from hub.arrangements.service import load_reference_data
from hub.audit.models import AuditEntry, AuditEntryAdministration
from hub.auth.models import OAuthClient
from hub.errors import InvalidInput
from hub.notify.models import WebhookDelivery, WebhookSubscription
from hub.registry.models import Operator, Programme
from hub.sync import engine
from hub.sync.connections import SyncSettings
from hub.sync.models import Connection, QuarantinedRecord, SyncRun
from hub.web import users
from hub.web.models import DashboardUser
from hub.web.security import CookieSessions
from tests.web.conftest import csrf_of, sign_in
from tests.web.seed import PASSWORD, Seeded


def run_status(app: Flask, run_id: int) -> str:
    with app.app_context():
        run = db.session().get(SyncRun, run_id)
        assert run is not None
        return run.status


def test_dashboard_needs_sign_in(client: FlaskClient) -> None:
    response = client.get("/dashboard/")
    assert response.status_code == 302 and "/dashboard/login" in response.headers["Location"]


def test_wrong_password_and_missing_csrf_are_refused(client: FlaskClient,
                                                     seeded: Seeded) -> None:
    wrong = sign_in(client, "eu-staff", "not the password")
    assert wrong.status_code == 401 and b"not right" in wrong.data
    unknown = sign_in(client, "nobody", PASSWORD)
    assert unknown.status_code == 401 and unknown.data == wrong.data
    forged = client.post("/dashboard/login", data={"username": "eu-staff",
                                                   "password": PASSWORD})
    assert forged.status_code == 400 and b"did not come from this site" in forged.data
    assert client.get("/dashboard/").status_code == 302


def test_staff_see_only_their_administration(app: Flask, eu_client: FlaskClient,
                                             seeded: Seeded) -> None:
    page = eu_client.get("/dashboard/").get_data(as_text=True)
    assert "eu-csv" in page and "uk-csv" not in page
    assert "Dashboard: European Union" in page
    own = eu_client.get(f"/dashboard/connections/{seeded.eu_connection}")
    assert own.status_code == 200
    other = eu_client.get(f"/dashboard/connections/{seeded.uk_connection}")
    assert other.status_code == 404 and b"uk-csv" not in other.data
    with app.app_context():
        uk_run = db.session().scalars(select(SyncRun.id).where(
            SyncRun.connection_id == seeded.uk_connection)).first()
    token = csrf_of(eu_client, "/dashboard/")
    refused = eu_client.post(f"/dashboard/runs/{uk_run}/discard", data={"csrf_token": token})
    assert refused.status_code == 404


def test_hub_admin_sees_every_administration(admin_client: FlaskClient,
                                             seeded: Seeded) -> None:
    page = admin_client.get("/dashboard/").get_data(as_text=True)
    assert "eu-csv" in page and "uk-csv" in page and "hub administrator" in page
    assert admin_client.get(f"/dashboard/connections/{seeded.uk_connection}").status_code == 200


def test_overview_shows_freshness_runs_arrangements_and_charts(
        eu_client: FlaskClient, seeded: Seeded) -> None:
    page = eu_client.get("/dashboard/").get_data(as_text=True)
    # freshness, volumes, recognised per MRA, partner look-ups
    assert page.count('<svg class="chart"') == 4
    assert "Operators recognised per MRA direction today" in page
    assert "EU-US" in page and "US-CTPAT recognises EU-AEO" in page
    # 20 EU AEOs on record; the AEOC-only one is outside EU-US's scope
    assert re.search(r"<td>US-CTPAT recognises EU-AEO</td><td>[^<]*</td><td>[^<]*</td>"
                     r'<td class="num">19</td>', page)
    assert "EU-US: US-CTPAT ← EU-AEO" in page
    assert f'id="held-{seeded.held_run}"' in page
    assert "fresh" in page and "needs confirmation" in page
    assert f'id="quarantine-{seeded.quarantined}"' in page
    detail = eu_client.get(f"/dashboard/connections/{seeded.eu_connection}")
    text = detail.get_data(as_text=True)
    assert text.count('<svg class="chart"') == 2 and "<polyline" in text
    assert detail.headers["Cache-Control"] == "no-store"


def test_confirm_a_held_run(app: Flask, eu_client: FlaskClient, seeded: Seeded) -> None:
    token = csrf_of(eu_client, "/dashboard/")
    response = eu_client.post(f"/dashboard/runs/{seeded.held_run}/confirm",
                              data={"csrf_token": token, "back": "overview"},
                              follow_redirects=True)
    assert response.status_code == 200
    assert f"Run {seeded.held_run} was applied" in response.get_data(as_text=True)
    assert run_status(app, seeded.held_run) == "succeeded"
    with app.app_context():
        removed = db.session().scalars(select(Operator).where(
            Operator.removed_at.is_not(None))).all()
    assert len(removed) == 10
    again = eu_client.post(f"/dashboard/runs/{seeded.held_run}/confirm",
                           data={"csrf_token": token}, follow_redirects=True)
    assert b"could not be confirmed" in again.data


def test_discard_a_held_run_and_csrf_is_required(app: Flask, eu_client: FlaskClient,
                                                 seeded: Seeded) -> None:
    forged = eu_client.post(f"/dashboard/runs/{seeded.held_run}/discard")
    assert forged.status_code == 400
    assert run_status(app, seeded.held_run) == "needs_confirmation"
    token = csrf_of(eu_client, "/dashboard/")
    eu_client.post(f"/dashboard/runs/{seeded.held_run}/discard", data={"csrf_token": token})
    assert run_status(app, seeded.held_run) == "discarded"


def test_quarantine_replay_with_corrections_and_dismiss(
        app: Flask, eu_client: FlaskClient, seeded: Seeded) -> None:
    token = csrf_of(eu_client, "/dashboard/")
    url = f"/dashboard/quarantine/{seeded.quarantined}/replay"
    still = eu_client.post(url, data={"csrf_token": token}, follow_redirects=True)
    assert b"still fails" in still.data
    bad = eu_client.post(url, data={"csrf_token": token, "corrections": "no equals sign"},
                         follow_redirects=True)
    assert b"is not field=value" in bad.data
    fixed = eu_client.post(url, data={"csrf_token": token,
                                      "corrections": "status=suspended\n"
                                                     "status_effective=2024-06-01"},
                           follow_redirects=True)
    assert b"passed validation and was applied" in fixed.data
    with app.app_context():
        session = db.session()
        record = session.get(QuarantinedRecord, seeded.quarantined)
        assert record is not None and record.status == "replayed"
        assert record.resolved_by == "user:eu-staff"
        operator = session.scalars(select(Operator).where(
            Operator.trader_id == "DE000000000000005")).one()
        assert operator.status == "suspended"
    dismissed = eu_client.post(f"/dashboard/quarantine/{seeded.quarantined}/dismiss",
                               data={"csrf_token": token}, follow_redirects=True)
    assert b"could not be dismissed" in dismissed.data


def test_sign_out_needs_csrf_and_ends_the_session(eu_client: FlaskClient) -> None:
    assert eu_client.post("/dashboard/logout").status_code == 400
    token = csrf_of(eu_client, "/dashboard/")
    assert eu_client.post("/dashboard/logout", data={"csrf_token": token}).status_code == 302
    assert eu_client.get("/dashboard/").status_code == 302


def test_passwords_are_hashed_at_the_production_cost(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite hashes passwords cheaply (tests/conftest.py); the hub itself uses
    werkzeug's scrypt at N=2**15, r=8, p=1, and a salt of its own for every password."""
    monkeypatch.undo()
    assert users.PASSWORD_METHOD == "scrypt"
    load_reference_data(session)
    first = users.create_user(session, "eu-one", PASSWORD, administration="EU")
    second = users.create_user(session, "eu-two", PASSWORD, administration="EU")
    for user in (first, second):
        method, salt, digest = user.password_hash.split("$")
        assert method == "scrypt:32768:8:1" and len(salt) == 16 and len(digest) == 128
        assert PASSWORD not in user.password_hash
    assert first.password_hash != second.password_hash
    assert users.authenticate(session, "eu-one", PASSWORD) is not None


@pytest.mark.parametrize(("password", "problem"), [
    ("short pass", "at least 12 characters"),
    (" " * 12, "at least 4 different characters"),
    ("abababababababab", "at least 4 different characters"),
    ("my name is EU-Three, ok", "must not contain the user name"),
    ("x" * 1000 + "yz01" + "x" * 21, "at most 1024 characters"),
    ("a good pass\x00phrase", "must not contain NUL characters"),
])
def test_one_password_rule_for_new_users_and_new_passwords(
        session: Session, password: str, problem: str) -> None:
    load_reference_data(session)
    with pytest.raises(InvalidInput) as created:
        users.create_user(session, "eu-three", password, administration="EU")
    assert created.value.fields == {"password": [problem]}
    users.create_user(session, "eu-three", PASSWORD, administration="EU")
    with pytest.raises(InvalidInput) as changed:
        users.set_password(session, "eu-three", password)
    assert changed.value.fields == {"password": [problem]}
    assert users.authenticate(session, "eu-three", PASSWORD) is not None


def test_a_password_followed_by_nul_bytes_is_not_the_password(session: Session) -> None:
    """scrypt's HMAC pads a short key with NUL bytes, so werkzeug's check accepts the
    password followed by NULs; the sign-in refuses it, as the client-secret check does."""
    load_reference_data(session)
    users.create_user(session, "eu-three", PASSWORD, administration="EU")
    assert users.authenticate(session, "eu-three", PASSWORD) is not None
    for padded in (PASSWORD + "\x00", PASSWORD + "\x00\x00"):
        assert users.authenticate(session, "eu-three", padded) is None


def test_user_names_are_one_whatever_their_case_and_a_disabled_user_can_be_enabled(
        app: Flask, runner: FlaskCliRunner, seeded: Seeded) -> None:
    taken = runner.invoke(args=["users", "create", "EU-Staff", "--administration", "EU",
                                "--password-stdin"], input="a long enough password\n")
    assert taken.exit_code != 0 and "already exists" in taken.output
    assert sign_in(app.test_client(), "EU-STAFF").status_code == 302
    assert runner.invoke(args=["users", "disable", "Eu-Staff"]).exit_code == 0
    assert sign_in(app.test_client(), "eu-staff").status_code == 401
    enabled = runner.invoke(args=["users", "enable", "eu-staff"])
    assert enabled.exit_code == 0 and "enabled" in enabled.output
    assert sign_in(app.test_client(), "eu-staff").status_code == 302
    unknown = runner.invoke(args=["users", "enable", "nobody"])
    assert unknown.exit_code != 0 and "no user 'nobody'" in unknown.output
    assert runner.invoke(args=["users", "set-password", "EU-staff", "--password-stdin"],
                         input="another long password\n").exit_code == 0
    with app.app_context():
        assert [u.username for u in users.list_users(db.session())] == [
            "eu-staff", "hub-admin", "uk-staff"]
        changes = db.session().execute(
            select(AuditEntry.action, AuditEntry.actor, AuditEntry.details)
            .where(AuditEntry.subject == "user:eu-staff",
                   AuditEntry.action.not_in(("user.login", "user.login_failed")))
            .order_by(AuditEntry.seq)).all()
        assert [(action, actor) for action, actor, _ in changes] == [
            ("user.created", "system"), ("user.disabled", "cli"), ("user.enabled", "cli"),
            ("user.password_changed", "cli")]
        assert "another long password" not in repr(changes)
        assert {a.administration for a in db.session().scalars(
            select(AuditEntryAdministration).join(AuditEntry).where(
                AuditEntry.subject == "user:eu-staff"))} == {"EU"}


def test_users_cli(app: Flask, runner: FlaskCliRunner, seeded: Seeded) -> None:
    ok = runner.invoke(args=["users", "create", "eu-second", "--administration", "eu",
                             "--password-stdin"], input="a long enough password\n")
    assert ok.exit_code == 0, ok.output
    assert "staff of eu" in ok.output
    prompted = runner.invoke(args=["users", "create", "root2", "--hub-admin"],
                             input="another long password\nanother long password\n")
    assert prompted.exit_code == 0, prompted.output
    duplicate = runner.invoke(args=["users", "create", "eu-second", "--administration", "EU",
                                    "--password-stdin"], input="a long enough password\n")
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output
    short = runner.invoke(args=["users", "create", "x", "--hub-admin", "--password-stdin"],
                          input="short\n")
    assert short.exit_code != 0 and "at least 12 characters" in short.output
    both = runner.invoke(args=["users", "create", "y", "--hub-admin", "--administration", "EU",
                               "--password-stdin"], input="a long enough password\n")
    assert both.exit_code != 0 and "not both" in both.output
    with app.app_context():
        user = db.session().scalars(select(DashboardUser).where(
            DashboardUser.username == "eu-second")).one()
        assert user.password_hash.startswith("scrypt:")
    listed = runner.invoke(args=["users", "list"])
    assert "eu-second" in listed.output and "hub-admin" in listed.output
    disabled = runner.invoke(args=["users", "disable", "eu-second"])
    assert disabled.exit_code == 0
    client = app.test_client()
    assert sign_in(client, "eu-second", "a long enough password").status_code == 401


def test_clients_and_webhooks_are_scoped_to_the_administration(
        app: Flask, eu_client: FlaskClient, admin_client: FlaskClient, seeded: Seeded) -> None:
    with app.app_context():
        session = db.session()
        for code, admin_code in (("EU-AEO", "EU"), ("UK-AEO", "UK")):
            programme = session.scalars(select(Programme).where(Programme.code == code)).one()
            client = OAuthClient(client_id=f"client-{admin_code.lower()}",
                                 name=f"{admin_code} risk engine", programme_id=programme.id,
                                 administration_id=programme.administration_id,
                                 scopes=["verify", "webhooks"])
            session.add(client)
            session.flush()
            subscription = WebhookSubscription(
                public_id=f"wh-{admin_code.lower()}", client_pk=client.id,
                url=f"https://{admin_code.lower()}.example/hook", event_types=["operator"],
                secret_encrypted="x", consecutive_failures=2 if admin_code == "UK" else 0)
            session.add(subscription)
            session.flush()
            session.add(WebhookDelivery(
                event_id=f"ev-{admin_code}", subscription_id=subscription.id,
                event_type="operator.suspended", dedupe_key="k", ordering_key="o", payload={},
                status="failed"))
        session.commit()
    page = eu_client.get("/dashboard/").get_data(as_text=True)
    assert "client-eu" in page and "client-uk" not in page
    assert "wh-eu" in page and "wh-uk" not in page
    every = admin_client.get("/dashboard/").get_data(as_text=True)
    assert "wh-eu" in every and "wh-uk" in every and "2 failures in a row" in every


def test_audit_chain_state(admin_client: FlaskClient, seeded: Seeded) -> None:
    page = admin_client.get("/dashboard/").get_data(as_text=True)
    assert 'id="audit-h"' in page
    verified = admin_client.get("/dashboard/audit")
    assert verified.status_code == 200
    text = verified.get_data(as_text=True)
    assert "The chain holds" in text or "not installed" in text


def test_usage_chart_per_partner_is_scoped(
        app: Flask, eu_client: FlaskClient, admin_client: FlaskClient, seeded: Seeded) -> None:
    with app.app_context():
        session = db.session()
        for code, admin_code in (("EU-AEO", "EU"), ("UK-AEO", "UK")):
            programme = session.scalars(select(Programme).where(Programme.code == code)).one()
            session.add(OAuthClient(client_id=f"usage-{admin_code.lower()}",
                                    name=f"{admin_code} usage engine",
                                    programme_id=programme.id,
                                    administration_id=programme.administration_id,
                                    scopes=["verify"]))
        session.commit()
    recorder = usage.recorder(app)
    recorder.lookups("usage-eu", "EU-AEO", "verify", [("recognised", "EU-US")] * 3)
    recorder.lookups("usage-uk", "UK-AEO", "match", [("no_match", None)])
    eu_page = eu_client.get("/dashboard/").get_data(as_text=True)
    assert "Partner look-ups in the last 30 days" in eu_page
    assert "EU usage engine: recognised 3" in eu_page
    assert "UK usage engine" not in eu_page
    admin_page = admin_client.get("/dashboard/").get_data(as_text=True)
    assert "UK usage engine: no_match 1" in admin_page


def test_the_session_serializer_is_built_once_per_secret_key(app: Flask) -> None:
    sessions = app.session_interface
    assert isinstance(sessions, CookieSessions)
    first = sessions.get_signing_serializer(app)
    assert first is not None and sessions.get_signing_serializer(app) is first
    cookie = first.dumps({"user_id": 7})
    old_key = app.secret_key
    try:
        # a rotated key: a new serializer, which still reads cookies signed with the old
        app.secret_key = "another secret key, long enough for the test profile"
        app.config["SECRET_KEY_FALLBACKS"] = [old_key]
        rotated = sessions.get_signing_serializer(app)
        assert rotated is not None and rotated is not first
        assert rotated.loads(cookie) == {"user_id": 7}
        with pytest.raises(BadSignature):  # the old key's serializer: not the new key
            first.loads(rotated.dumps({"user_id": 8}))
    finally:
        app.secret_key = old_key
        app.config["SECRET_KEY_FALLBACKS"] = []
    assert sessions.get_signing_serializer(app) is first


def test_overview_reads_at_a_glance(app: Flask, admin_client: FlaskClient,
                                    seeded: Seeded) -> None:
    # A second run of an unchanged feed: it changed nothing, so it is folded away.
    quiet = engine.run_sync(db.get_db(app), SyncSettings.from_config(app.config),
                            seeded.uk_connection)
    assert quiet is not None and quiet.status == "succeeded"
    page = admin_client.get("/dashboard/").get_data(as_text=True)
    runs_section = page[page.index('id="runs-h"'):page.index('id="quarantine-h"')]
    table, folded = runs_section.split("that changed nothing</summary>")
    assert f"<th scope=\"row\">{quiet.id}</th>" not in table
    assert f"Run {quiet.id} of uk-csv" in folded
    # connection names, never bare ids
    assert f">run {seeded.held_run} · eu-csv</text>" in runs_section
    assert "conn " not in page
    # feed age in human units, with the staleness threshold drawn on the chart
    assert re.search(r"<td>\d+ (s|min) <span class=\"badge badge-succeeded\">fresh", page)
    freshness = page[page.index('id="connections-h"'):page.index('id="held-h"')]
    assert freshness.count('class="chart-threshold"') >= 3  # legend + one per connection
    assert "(stale beyond " in freshness
    # open quarantine grouped by reason, with counts
    quarantine = page[page.index('id="quarantine-h"'):page.index('id="usage-h"')]
    assert re.search(r"<code>invalid_status</code></th><td class=\"num\">1</td>", quarantine)
    # arrangements that recognise nobody on record are folded away
    shown, folded = page.split("that recognise no operator on record</summary>")
    assert "<th scope=\"row\">EU-US</th>" in shown.split('id="arrangements-h"')[1]
    assert "<th scope=\"row\">EU-AD</th>" in folded
    # each held run links to its difference page
    held = page[page.index(f'id="held-{seeded.held_run}"'):]
    assert f'href="/dashboard/runs/{seeded.held_run}/difference?kind=remove"' in held[:2000]


def test_audit_page_names_connections(admin_client: FlaskClient, seeded: Seeded) -> None:
    page = admin_client.get("/dashboard/audit").get_data(as_text=True)
    assert (f'eu-csv <span class="muted">(connection:{seeded.eu_connection})</span>'
            in page)


def test_connection_page_feed_age_in_human_units(eu_client: FlaskClient,
                                                  seeded: Seeded) -> None:
    page = eu_client.get(f"/dashboard/connections/{seeded.eu_connection}").get_data(
        as_text=True)
    assert re.search(r"<dt>Feed age</dt><dd>\d+ (s|min) ", page)
    assert "Backing off" not in page
    chart = page[page.index('id="fresh-h"'):page.index('id="runs-h"')]
    assert 'class="chart-threshold"' in chart and ">stale beyond " in chart
    assert "0.0 h" not in chart and re.search(r": \d+ (s|min)</title>", chart)


def test_a_failing_connection_page_says_when_its_backoff_ends(
        app: Flask, eu_client: FlaskClient, seeded: Seeded) -> None:
    with app.app_context():
        connection = db.session().get(Connection, seeded.eu_connection)
        assert connection is not None
        connection.consecutive_failures, connection.last_failure_at = 3, clock.now()
        db.session().commit()
    page = eu_client.get(f"/dashboard/connections/{seeded.eu_connection}").get_data(
        as_text=True)
    assert re.search(r"<dt>Backing off</dt><dd>no scheduled run before [^<]+</dd>", page)
    assert "(3 in a row)" in page


def test_a_discarded_runs_difference_is_said_to_be_gone(
        app: Flask, eu_client: FlaskClient, seeded: Seeded) -> None:
    url = f"/dashboard/runs/{seeded.held_run}/difference?kind=remove"
    assert "Would remove" in eu_client.get(url).get_data(as_text=True)
    token = csrf_of(eu_client, "/dashboard/")
    eu_client.post(f"/dashboard/runs/{seeded.held_run}/discard", data={"csrf_token": token})
    answer = eu_client.get(url)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "is discarded and its staged rows are gone" in page and "<table>" not in page
    with app.app_context():  # the audit log names who discarded it
        actor = db.session().scalar(select(AuditEntry.actor).where(
            AuditEntry.action == "sync.discarded"))
    assert actor == "user:eu-staff"


@pytest.mark.parametrize("target", ["/dashboard\n", "/dashboard\r\nSet-Cookie: x=1",
                                    "/dashboard\\..\\evil", "https://evil.example/"])
def test_sign_in_goes_on_only_to_a_plain_dashboard_path(app: Flask, seeded: Seeded,
                                                         target: str) -> None:
    client = app.test_client()
    answer = client.post("/dashboard/login", data={
        "csrf_token": csrf_of(client), "username": "eu-staff", "password": PASSWORD,
        "next": target})
    assert answer.status_code == 302 and answer.headers["Location"] == "/dashboard/"


def test_only_failed_sign_ins_count_against_an_address(app: Flask, seeded: Seeded) -> None:
    """Staff behind one office address do not lock each other out by signing in."""
    app.config["WEB_LOGIN_LIMIT"] = 2
    for _ in range(4):
        assert sign_in(app.test_client(), "eu-staff").status_code == 302
    client = app.test_client()
    assert [sign_in(client, "eu-staff", "wrong password").status_code
            for _ in range(2)] == [401, 401]
    assert sign_in(client, "eu-staff").status_code == 429  # two failures: the limit


def test_too_many_sign_ins_are_named_as_such(app: Flask, seeded: Seeded) -> None:
    app.config["WEB_LOGIN_LIMIT"] = 1
    client = app.test_client()
    sign_in(client, "eu-staff", "wrong password")
    limited = sign_in(client, "eu-staff")
    assert limited.status_code == 429
    assert b"Too many sign-in attempts" in limited.data and b"look-ups" not in limited.data
