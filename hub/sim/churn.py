"""Churn: what happens to a registry from one simulated day to the next.

:func:`churn_day` draws a deterministic set of changes for the registry's current day
(seeded by seed, programme and day): new authorisations, suspensions (whole or of one
component), reinstatements, revocations, expiries and renewals (programmes with validity
periods), withdrawals, annulments (rare), renames, moves, consent withdrawals and grants,
and removals from the published list (tombstones). :func:`apply_change` makes one such change
on demand. Every change bumps the record's ``changed_at`` and gives it the next sequence.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hub.sim.companies import compose_name, locale, make_address, make_stem, weighted
from hub.sim.generator import Record

if TYPE_CHECKING:
    from hub.sim.registry import Registry

#: Every kind of change, in the order a day applies them.
CHANGE_KINDS = ("new", "suspend", "suspend_component", "reinstate", "revoke", "expire",
                "renew", "withdraw", "annul", "rename", "move", "consent_withdraw",
                "consent_grant", "remove")

# Expected changes per operator per day (a 10,000-operator registry sees ~4 new
# authorisations and ~1.5 suspensions a day).
_RATES: dict[str, float] = {
    "new": 0.0004, "suspend": 0.0001, "suspend_component": 0.00006, "reinstate": 0.0001,
    "revoke": 0.00005, "expire": 0.00008, "renew": 0.0003, "withdraw": 0.00004,
    "annul": 0.00001, "rename": 0.0001, "move": 0.0001, "consent_withdraw": 0.00004,
    "consent_grant": 0.00005, "remove": 0.00004,
}

class ChangeError(ValueError):
    """A change that cannot be made (unknown operator or kind, removed operator, ...)."""


@dataclass(frozen=True)
class Change:
    """One change to one operator."""

    seq: int
    day: int
    programme: str
    trader_id: str
    kind: str
    component: str | None = None
    detail: str = ""
    changed_at: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"seq": self.seq, "day": self.day, "programme": self.programme,
                "trader_id": self.trader_id, "kind": self.kind, "component": self.component,
                "detail": self.detail, "changed_at": self.changed_at}


_STATUS_CODES = {"valid": 1, "suspended": 2, "revoked": 3, "annulled": 4, "expired": 5,
                 "withdrawn": 6}
#: Summary of a removed (tombstoned) operator.
REMOVED = 7
_ANY_SUSPENDED = 8
_MULTI_ALL_VALID = 16
_CONSENT_SHARE = 32


def summarise(record: Record) -> int:
    """One byte saying which changes can apply to `record` (status and a few flags)."""
    statuses = [entry["status"] for entry in record["categories"]]
    value = _STATUS_CODES.get(record["status"], 1)
    if "suspended" in statuses:
        value |= _ANY_SUSPENDED
    if len(statuses) > 1 and all(status == "valid" for status in statuses):
        value |= _MULTI_ALL_VALID
    if record["consent_share"]:
        value |= _CONSENT_SHARE
    return value


def _applicable(kind: str, flags: int, registry: Registry) -> bool:
    status = flags & 7
    if status == REMOVED:
        return False
    profile = registry.generator.profile
    valid, suspended = _STATUS_CODES["valid"], _STATUS_CODES["suspended"]
    if kind == "suspend":
        return status == valid
    if kind == "suspend_component":
        return status == valid and bool(flags & _MULTI_ALL_VALID)
    if kind == "reinstate":
        return bool(flags & _ANY_SUSPENDED)
    if kind in ("revoke", "withdraw", "rename", "move"):
        return status in (valid, suspended)
    if kind in ("expire", "renew"):
        return profile.validity_years is not None and status == valid
    if kind == "annul":
        return status in (valid, suspended, _STATUS_CODES["revoked"])
    if kind == "consent_withdraw":
        return profile.consent_required and bool(flags & _CONSENT_SHARE)
    if kind == "consent_grant":
        return profile.consent_required and not flags & _CONSENT_SHARE
    if kind == "remove":
        return status in (3, 4, 5, 6)
    return True


def churn_day(registry: Registry) -> list[Change]:
    """The changes of the registry's current day (call after advancing `registry.day`)."""
    rng = random.Random(f"aeo-sim/{registry.seed}/{registry.programme}/churn/{registry.day}")
    changes: list[Change] = []
    for kind in CHANGE_KINDS:
        expected = _RATES[kind] * registry.size
        wanted = int(expected + rng.random())
        if kind == "new":
            changes.extend(_new(registry) for _ in range(wanted))
            continue
        attempts = 0
        made = 0
        touched: set[int] = set()
        while made < wanted and attempts < 400 * wanted:
            attempts += 1
            index = rng.randrange(registry.count)
            if index in touched or not _applicable(kind, registry.flags(index), registry):
                continue
            touched.add(index)
            changes.append(_change(registry, index, kind, None, rng))
            made += 1
    return changes


def apply_change(registry: Registry, kind: str, key: str | None,
                 component: str | None = None) -> Change:
    """Make one change of `kind` to the operator `key` (trader id or authorisation number)."""
    if kind not in CHANGE_KINDS:
        expected = ", ".join(CHANGE_KINDS)
        raise ChangeError(f"unknown change kind {kind!r}; expected one of {expected}")
    if kind == "new":
        return _new(registry)
    if key is None:
        raise ChangeError(f"a {kind!r} change needs the operator's trader_id")
    try:
        index = registry.index_of(key)
    except KeyError:
        raise ChangeError(f"no operator {key!r} in {registry.programme}") from None
    if registry.record(index) is None:
        raise ChangeError(f"operator {key!r} was removed from the published list")
    if kind == "suspend" and component is not None:
        kind = "suspend_component"
    rng = random.Random(f"aeo-sim/{registry.seed}/{registry.programme}/apply/{registry.version}")
    return _change(registry, index, kind, component, rng)


def _new(registry: Registry) -> Change:
    index = registry.allocate()
    record = registry.generator.new_record(index, registry.today)
    return registry.commit(index, record, "new")


def _set_components(record: Record, status: str, since: str,
                    only: str | None = None, when: tuple[str, ...] = ()) -> None:
    for entry in record["categories"]:
        if only is not None and entry["code"] != only:
            continue
        if when and entry["status"] not in when:
            continue
        entry["status"] = status
        entry["since"] = since


def _overall(record: Record) -> str:
    statuses = [entry["status"] for entry in record["categories"]]
    if "valid" in statuses:
        return "valid"
    return str(statuses[0] if statuses else record["status"])


def _change(registry: Registry, index: int, kind: str, component: str | None,
            rng: random.Random) -> Change:
    if kind == "remove":
        return registry.commit(index, None, "remove")
    record = registry.editable(index)
    today = registry.today.isoformat()
    profile = registry.generator.profile
    detail = ""
    codes = [entry["code"] for entry in record["categories"]]
    if component is not None and component not in codes:
        raise ChangeError(f"operator {record['trader_id']} holds {', '.join(codes)}, "
                          f"not {component!r}")
    if kind == "suspend":
        _set_components(record, "suspended", today, when=("valid",))
    elif kind == "suspend_component":
        component = component or rng.choice(codes)
        _set_components(record, "suspended", today, only=component)
    elif kind == "reinstate":
        _set_components(record, "valid", today, only=component, when=("suspended",))
    elif kind in ("revoke", "withdraw"):
        _set_components(record, "revoked" if kind == "revoke" else "withdrawn", today)
    elif kind == "expire":
        yesterday = (registry.today - dt.timedelta(days=1)).isoformat()
        record["valid_until"] = yesterday
        _set_components(record, "expired", today)
    elif kind == "renew":
        years = profile.validity_years or 3
        record["valid_from"] = today
        until = registry.today.replace(year=registry.today.year + years) - dt.timedelta(days=1)
        record["valid_until"] = until.isoformat()
        _set_components(record, "valid", today)
    elif kind == "annul":
        _set_components(record, "annulled", record["authorised_on"])
        record["status"] = "annulled"
        record["status_effective"] = record["authorised_on"]  # retroactive
    elif kind == "rename":
        country = record["address"]["country"]
        old = record["legal_name"]
        form = weighted(rng, locale(country)["legal_forms"])
        if rng.random() < 0.5:
            stem = old
            for legal_form, _ in locale(country)["legal_forms"]:
                stem = stem.removesuffix(" " + legal_form).removeprefix(legal_form + " ")
        else:
            stem = make_stem(country, rng, record["address"]["city"])
        record["legal_name"] = compose_name(country, stem, form)
        if record["legal_name"] == old:
            record["legal_name"] = compose_name(country, stem + " International", form)
        detail = f"{old} -> {record['legal_name']}"
    elif kind == "move":
        country = record["address"]["country"]
        street, city, postcode, region = make_address(country, rng)
        record["address"] = {"street": street, "city": city, "postcode": postcode,
                             "region": region if record["address"]["region"] else None,
                             "country": country}
        detail = f"{street}, {city}"
    elif kind == "consent_withdraw":
        record["consent_share"] = False
        record["consent_publish"] = False
    elif kind == "consent_grant":
        record["consent_share"] = True
        record["consent_publish"] = profile.publishes_list and rng.random() < 0.7
    if kind in ("suspend", "suspend_component", "reinstate", "revoke", "withdraw", "expire",
                "renew"):
        new_status = _overall(record)
        if new_status != record["status"] or kind in ("renew", "suspend_component"):
            record["status_effective"] = today
        record["status"] = new_status
    return registry.commit(index, record, kind, component, detail)
