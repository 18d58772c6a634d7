"""Every direction of the shipped reference data, on several dates: the policy shares a
direction's operators exactly where verify treats the direction as active.

Verify is asked as it answers anyone (no view), about one operator per category of every
recognised programme, for both flows; what it says about each arrangement (recognised
under it, or reasons naming it) is the evidence. The policy's side is the client's view
on that day. Neither side's rule is copied here.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy.orm import Session

from hub.arrangements.reference import load_reference
from hub.arrangements.service import load_reference_data
from hub.auth import policy
from hub.recognition.service import verify_many
from hub.recognition.trader import DeclaredTrader
from hub.registry.models import Operator
from tests.auth.hubkit import make_operator, programmes

DAYS = (dt.date(2020, 6, 1), dt.date(2021, 1, 1), dt.date(2024, 8, 1), dt.date(2024, 8, 19),
        dt.date(2024, 10, 1), dt.date(2025, 2, 28), dt.date(2025, 7, 31), dt.date(2025, 8, 1),
        dt.date(2026, 6, 15))
INACTIVE = {"ARRANGEMENT_NOT_IN_FORCE", "NOT_YET_ACTIVE"}


def test_policy_shares_exactly_where_verify_treats_a_direction_as_active(session: Session
                                                                          ) -> None:
    load_reference_data(session)
    policy.clear_cache()
    ref = load_reference()
    progs = programmes(session)
    references: dict[str, list[DeclaredTrader]] = defaultdict(list)
    unique = 1
    for code, programme in sorted(progs.items()):
        for category in programme.category_codes():
            oid = make_operator(session, programme, 9000 + unique, category=category)
            row = session.get(Operator, oid)
            assert row is not None
            references[code].append(DeclaredTrader(scheme=row.trader_id_scheme,
                                                    value=row.trader_id))
            unique += 1
    directions = [(a.code, d.recognising, d.recognised)
                  for a in ref.arrangements.values() for d in a.directions]
    assert len(directions) > 100
    checked = {"active": 0, "inactive": 0}
    for day in DAYS:
        by_recognising: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for arrangement, recognising, recognised in directions:
            by_recognising[recognising].append((arrangement, recognised))
        for recognising, pairs in sorted(by_recognising.items()):
            view = policy.view_for(session, progs[recognising].id, day=day)
            shared = {(a, g.programme_code) for g in view.grants.values()
                      for a in g.arrangements}
            evidence: dict[tuple[str, str], set[bool]] = defaultdict(set)
            recognised_codes = sorted({p for _a, p in pairs})
            for flow in ("import", "export"):
                for code in recognised_codes:
                    for decision in verify_many(session, references[code], recognising, day,
                                                flow):
                        for found in decision.arrangements:
                            evidence[(found.arrangement, code)].add(True)
                        named: dict[str, set[str]] = defaultdict(set)
                        for reason in decision.reasons:
                            if reason.arrangement:
                                named[reason.arrangement].add(reason.code)
                        for arrangement, codes in named.items():
                            evidence[(arrangement, code)].add(not codes & INACTIVE)
            for arrangement, recognised in pairs:
                seen = evidence[(arrangement, recognised)]
                where = (day, arrangement, recognising, recognised, seen)
                # Verify speaks of every direction, and never both ways on one day.
                assert seen in ({True}, {False}), where
                active = seen == {True}
                assert ((arrangement, recognised) in shared) == active, where
                checked["active" if active else "inactive"] += 1
    # Both kinds occur on the shipped data (ASEAN's late members, EU-CA before August
    # 2025, the signed-only arrangements).
    assert checked["active"] > 100 and checked["inactive"] > 50, checked
