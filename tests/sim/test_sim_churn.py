"""Churn: every change kind happens, sequences grow, changes on demand."""

from __future__ import annotations

import pytest

from hub.sim.churn import CHANGE_KINDS, ChangeError
from hub.sim.registry import generate_registry


def test_churn_produces_every_kind_with_increasing_sequences() -> None:
    eu = generate_registry("EU-AEO", 5000, 7)
    cn = generate_registry("CN-AEO", 3000, 7)
    changes = eu.advance(150) + cn.advance(150)
    kinds = {change.kind for change in changes}
    assert kinds == set(CHANGE_KINDS)
    for registry in (eu, cn):
        seqs = [change.seq for change in registry.log]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert seqs[0] > registry.size
        stamps = [change.changed_at for change in registry.log]
        assert stamps == sorted(stamps)
        order = [seq for seq, _ in registry.entries()]
        assert order == sorted(order)


def test_churn_is_deterministic_and_day_by_day() -> None:
    one = generate_registry("EU-AEO", 2000, 4)
    one.advance(10)
    other = generate_registry("EU-AEO", 2000, 4, day=10)
    assert [c.as_dict() for c in one.log] == [c.as_dict() for c in other.log]
    assert list(one.iter_records()) == list(other.iter_records())


def test_apply_suspends_one_component_then_reinstates() -> None:
    registry = generate_registry("EU-AEO", 300, 5)
    holder = next(r for r in registry.iter_records()
                  if r["status"] == "valid" and len(r["categories"]) == 2
                  and all(c["status"] == "valid" for c in r["categories"]))
    before = registry.max_seq
    change = registry.apply("suspend", holder["trader_id"], "AEOS")
    assert change.kind == "suspend_component" and change.seq == before + 1
    current = registry.lookup(holder["trader_id"])
    assert current is not None
    assert current["status"] == "valid"
    assert {c["code"]: c["status"] for c in current["categories"]} == {
        "AEOC": "valid", "AEOS": "suspended"}
    assert current["changed_at"] == change.changed_at
    registry.apply("reinstate", holder["trader_id"])
    current = registry.lookup(holder["trader_id"])
    assert current is not None and {c["status"] for c in current["categories"]} == {"valid"}


def test_apply_every_kind_and_tombstone() -> None:
    registry = generate_registry("CN-AEO", 200, 5)
    ids = registry.trader_ids(20)
    for trader_id, kind in zip(ids, [k for k in CHANGE_KINDS if k != "new"], strict=False):
        registry.apply(kind, trader_id)
    new = registry.apply("new")
    assert registry.lookup(new.trader_id) is not None
    removed = registry.log[-2]
    assert removed.kind == "remove"
    assert registry.lookup(removed.trader_id) is None
    deletion = registry.deletion(registry.index_of(removed.trader_id))
    assert deletion is not None and deletion["trader_id"] == removed.trader_id
    assert registry.published_count == 200  # one new, one removed
    annulled = registry.lookup(ids[CHANGE_KINDS.index("annul") - 1])
    assert annulled is not None and annulled["status"] == "annulled"
    assert annulled["status_effective"] == annulled["authorised_on"]


def test_apply_errors() -> None:
    registry = generate_registry("EU-AEO", 50, 5)
    with pytest.raises(ChangeError, match="unknown change kind"):
        registry.apply("explode", registry.trader_ids(1)[0])
    with pytest.raises(ChangeError, match="no operator"):
        registry.apply("suspend", "DE000")
    aeoc = next(r for r in registry.iter_records() if len(r["categories"]) == 1)
    with pytest.raises(ChangeError, match="not 'XYZ'"):
        registry.apply("suspend", aeoc["trader_id"], "XYZ")
