"""Isolation matrix: every client programme x every data programme x every endpoint that
returns operators. The expectation is derived from the reference files (arrangements in
force today, active directions and their categories, consent rules), not hand-listed."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict

from hub.arrangements.reference import ALL_CATEGORIES, load_reference
from hub.auth import policy
from tests.auth.hubkit import bearer, make_client, make_operator, programmes

SCOPES = "verify,match,registry:read,changes:read,export"


def expected_scope() -> tuple[dict[str, dict[str, set[str]]], dict[str, set[str]]]:
    """recognising -> recognised -> categories, and the shared data items per pair."""
    ref = load_reference()
    today = dt.datetime.now(dt.UTC).date()
    scope: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    fields: dict[str, set[str]] = defaultdict(set)
    for arrangement in ref.arrangements.values():
        status = None
        for change in sorted(arrangement.status_history, key=lambda c: c.date):
            if change.date <= today:
                status = change.status
        if status != "in_force":
            continue
        for d in arrangement.directions:
            if d.active_from and today < d.active_from:
                continue
            if d.active_until and today > d.active_until:
                continue
            cats = set(d.categories)
            if ALL_CATEGORIES in cats:
                cats = {c.code for c in ref.programmes[d.recognised].categories}
            scope[d.recognising][d.recognised] |= cats
            fields[f"{d.recognising}>{d.recognised}"] |= set(arrangement.data_fields)
    return scope, fields


def test_isolation_matrix(ref_app, committed_db):
    ref = load_reference()
    scope, shared = expected_scope()
    ops: dict[int, tuple[str, str, bool, str]] = {}  # id -> programme, category, consent, id
    with committed_db.session_scope(write=True) as session:
        progs = programmes(session)
        unique = 1
        for code, programme in sorted(progs.items()):
            for category in programme.category_codes():
                oid = make_operator(session, programme, unique, category=category)
                ops[oid] = (code, category, True, "")
                unique += 1
            if programme.consent_required:
                oid = make_operator(session, programme, unique,
                                    category=programme.category_codes()[0], consent=False)
                ops[oid] = (code, programme.category_codes()[0], False, "")
                unique += 1
        trader = {oid: (session.get(__import__("hub.registry.models", fromlist=["Operator"])
                                    .Operator, oid)) for oid in ops}
        traders = {oid: {"scheme": row.trader_id_scheme, "value": row.trader_id}
                   for oid, row in trader.items()}
    policy.clear_cache()
    client = ref_app.test_client()
    admin = bearer(committed_db, make_client(committed_db, None, "admin"))
    order = sorted(ops)
    for recognising in sorted(ref.programmes):
        headers = bearer(committed_db, make_client(committed_db, recognising, SCOPES))
        allowed_cats = scope.get(recognising, {})
        expected = {
            oid for oid, (prog, cat, consent, _) in ops.items()
            if cat in allowed_cats.get(prog, set())
            and (consent or not ref.programmes[prog].consent_required)
        }
        label = f"client {recognising}"

        # Lists (paged through the keyset cursor).
        seen: dict[int, dict] = {}
        cursor = None
        while True:
            url = "/api/v1/operators?limit=7" + (f"&cursor={cursor}" if cursor else "")
            page = client.get(url, headers=headers)
            assert page.status_code == 200, page.json
            for item in page.json["items"]:
                seen[item["id"]] = item
            cursor = page.json["next_cursor"]
            if not cursor:
                break
        assert set(seen) == expected, (label, {o: ops[o] for o in set(seen) ^ expected})
        for oid, item in seen.items():
            prog = ops[oid][0]
            allowed = policy.shared_fields(shared[f"{recognising}>{prog}"])
            assert set(item) <= allowed, (label, set(item) - allowed)

        # Detail and history: every visible operator, and the invisible ones answer 404.
        invisible = [o for o in order if o not in expected][:12]
        for oid in sorted(expected) + invisible:
            detail = client.get(f"/api/v1/operators/{oid}", headers=headers)
            history = client.get(f"/api/v1/operators/{oid}/history", headers=headers)
            want = 200 if oid in expected else 404
            assert (detail.status_code, history.status_code) == (want, want), (label, oid)

        # Export of every programme the client may see, and none other.
        exported: set[int] = set()
        for prog in sorted({p for p, *_ in ops.values()}):
            # A streamed response holds its request's session until it is closed.
            with client.get(f"/api/v1/export/{prog}.ndjson", headers=headers) as response:
                if prog in allowed_cats:
                    assert response.status_code == 200, (label, prog)
                    exported |= {json.loads(line)["id"] for line in
                                 response.get_data(as_text=True).splitlines() if line}
                else:
                    assert response.status_code == 404, (label, prog)
        assert exported == expected, label

        # Change feed: creations of exactly the visible operators.
        feed = client.get("/api/v1/changes?limit=5000", headers=headers)
        created = {c["operator_id"] for c in feed.json["changes"] if c["kind"] == "created"}
        assert created == expected, label

        # Verify (batch, in order): the client's answers equal the admin's for visible
        # operators and are "unknown trader" for the rest.
        refs = [traders[o] for o in order]
        mine = client.post("/api/v1/verify/batch", headers=headers,
                           json={"traders": refs}).json["decisions"]
        full = client.post("/api/v1/verify/batch", headers=admin,
                           json={"traders": refs, "programme": recognising}).json["decisions"]
        for oid, answer, truth in zip(order, mine, full, strict=True):
            truth_id = (truth.get("operator") or {}).get("id")
            if oid in expected and truth_id == oid:
                assert answer["decision"] == truth["decision"], (label, oid)
                assert answer["operator"]["id"] == oid
            elif oid not in expected:
                assert answer["decision"] == "unknown_trader", (label, oid, answer)
                assert answer["operator"] is None
        # Single verify agrees with the batch for one visible and one invisible operator.
        for oid in (sorted(expected)[:1] + invisible[:1]):
            single = client.post("/api/v1/verify", headers=headers,
                                 json={"trader": traders[oid]}).json["decision"]
            assert single["decision"] == mine[order.index(oid)]["decision"], (label, oid)
