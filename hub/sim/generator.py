"""Deterministic synthetic AEO registries for any programme in the reference data.

Everything derives from string-seeded ``random.Random`` instances (``Random("aeo-sim/...")``
hashes the string with SHA-512, so output does not depend on ``PYTHONHASHSEED``); the global
``random`` module is never used. Record ``i`` of a programme depends only on (seed,
programme, i), so a registry of 600,000 operators streams in bounded memory and any record
can be regenerated on demand.

A shared *company universe* (keyed by the seed) supplies a configurable share of each
registry's operators: the same company then appears in several programmes under slightly
different names and addresses. :func:`hub.sim.registry.iter_ground_truth` (and
:meth:`Registry.company_of`) give the company behind each record for match-quality
benchmarks; the published record never carries it.

Records are dicts in the node protocol's JSON shape (docs/node-protocol.md).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import random
from dataclasses import dataclass
from typing import Any

from hub.arrangements.reference import load_reference
from hub.identifiers.errors import IdentifierError
from hub.identifiers.mid import build_mid
from hub.sim import numbers
from hub.sim.companies import (
    Company,
    address_variant,
    local_establishment,
    locale,
    make_address,
    make_company,
    name_variant,
    weighted,
)
from hub.sim.data.locales import COUNTRIES

#: Day 0 of the simulated calendar.
SIM_EPOCH = dt.date(2025, 3, 3)

#: Default share of a registry's operators drawn from the shared company universe.
DEFAULT_OVERLAP = 0.08

#: Record statuses (the canonical vocabulary).
STATUSES = ("valid", "suspended", "revoked", "annulled", "expired", "withdrawn")

Record = dict[str, Any]

# Category mixes per programme (relative weights); programmes not listed draw uniformly.
_CATEGORY_WEIGHTS: dict[str, dict[str, int]] = {
    "EU-AEO": {"AEOF": 60, "AEOC": 35, "AEOS": 5},
    "UK-AEO": {"AEOC": 45, "AEOS": 55},
    "CN-AEO": {"ACE": 1},
    "US-CTPAT": {"importer": 45, "foreign_manufacturer": 14, "highway_carrier": 10,
                 "customs_broker": 8, "consolidator": 8, "exporter": 5,
                 "third_party_logistics": 4, "sea_carrier": 1, "air_carrier": 1,
                 "rail_carrier": 1, "marine_port_terminal_operator": 1,
                 "mexican_long_haul_carrier": 2},
    "SG-STP": {"STP": 60, "STP_PLUS": 40},
    "KR-AEO": {"A": 50, "AA": 35, "AAA": 15},
    "JP-AEO": {"exporter": 40, "importer": 10, "warehouse_operator": 15, "customs_broker": 20,
               "logistics_operator": 10, "manufacturer": 5},
    "PH-AEO": {"LEVEL_1": 40, "LEVEL_2": 60},
    "BR-OEA": {"OEA_S": 30, "OEA_C1": 20, "OEA_C2": 10, "OEA_PLENO": 40},
    "IN-AEO": {"T1": 60, "T2": 25, "T3": 5, "LO": 10},
    "BY-AEO": {"TYPE_1": 30, "TYPE_2": 20, "TYPE_3": 50},
    "HK-AEO": {"TIER1": 70, "TIER2": 30},
    "TW-AEO": {"SECURITY": 60, "GENERAL": 40},
}

# Overall status mix at day 0 (per thousand). "partial" = one component of a composite
# category suspended while the other stays valid (overall status stays valid).
_STATUS_MIX = [("valid", 915), ("partial", 15), ("suspended", 20), ("revoked", 15),
               ("withdrawn", 15), ("expired", 12), ("annulled", 3), ("valid_old", 5)]

# How likely a programme is to certify a company of the shared universe outside its home.
_PARTNER_WEIGHTS: dict[str, float] = {
    "EU-AEO": 30, "US-CTPAT": 30, "CN-AEO": 12, "JP-AEO": 6, "KR-AEO": 5, "SG-STP": 5,
    "UK-AEO": 5, "CA-PIP": 4, "MX-OEA": 3, "CH-AEO": 3, "IN-AEO": 3, "MY-AEO": 2,
    "TH-AEO": 2, "NO-AEO": 1, "AU-ATT": 1, "NZ-SES": 1, "BR-OEA": 1, "ID-AEO": 1,
    "PH-AEO": 1, "HK-AEO": 1, "TW-AEO": 1,
}


@dataclass(frozen=True)
class ProgrammeProfile:
    """What the generator needs to know about one programme (from the reference data)."""

    code: str
    administration: str
    countries: tuple[str, ...]
    country_weights: tuple[float, ...]
    categories: tuple[tuple[str, tuple[str, ...]], ...]  # (code, components)
    category_weights: tuple[float, ...]
    primary_scheme: str
    other_schemes: tuple[str, ...]
    authorisation_scheme: str | None
    consent_required: bool
    publication_consent_required: bool
    publishes_list: bool
    validity_years: int | None
    launched: dt.date
    authority: str
    tiers: tuple[str, ...] = ()  # the programme's tiers, lowest first (C-TPAT)

    def components(self, category: str) -> tuple[str, ...]:
        """The components of `category` (itself when it has none)."""
        for code, parts in self.categories:
            if code == category:
                return parts or (code,)
        return (category,)


#: Shares of C-TPAT's tiers (lowest first): most importers are validated (tier 2), a
#: quarter exceed the minimum criteria (tier 3, importers only), the rest are certified
#: and not yet validated (tier 1).
_TIER_SHARES = {"importer": (0.20, 0.55, 0.25), "other": (0.30, 0.70, 0.0)}


def _tier(tiers: tuple[str, ...], component: str, trader_id: str) -> str:
    """A component's tier, drawn from the trader id's digest (the generator's own
    random sequence, and so every other record, stays as it was without tiers)."""
    shares = _TIER_SHARES["importer" if component == "importer" else "other"]
    draw = int(hashlib.sha256(f"tier:{trader_id}".encode()).hexdigest()[:8], 16) / 2**32
    total = 0.0
    for tier, share in zip(tiers, shares, strict=False):
        total += share
        if draw < total:
            return tier
    return tiers[0]


@functools.cache
def _reference() -> Any:
    return load_reference()


def programme_codes() -> list[str]:
    """The codes of every operational programme in the reference data."""
    return [code for code, ref in _reference().programmes.items()
            if getattr(ref, "status", "operational") != "developing"]


@functools.cache
def programme_profile(code: str) -> ProgrammeProfile:
    """The generation profile of programme `code`; `KeyError` for an unknown programme."""
    reference = _reference()
    try:
        ref = reference.programmes[code]
    except KeyError:
        known = ", ".join(reference.programmes)
        raise KeyError(f"unknown programme {code!r}; known: {known}") from None
    administration = reference.administrations[ref.administration]
    countries = tuple(c for c in administration.countries if c in COUNTRIES) or tuple(
        administration.countries[:1]
    )
    weights = tuple(float(locale(c)["weight"]) for c in countries)
    mix = _CATEGORY_WEIGHTS.get(code, {})
    categories = tuple((cat.code, tuple(cat.components)) for cat in ref.categories
                       if not mix or cat.code in mix)
    category_weights = tuple(float(mix.get(cat, 1)) for cat, _ in categories)
    return ProgrammeProfile(
        code=code, administration=ref.administration, countries=countries,
        country_weights=weights, categories=categories, category_weights=category_weights,
        primary_scheme=ref.primary_identifier, other_schemes=tuple(ref.other_identifiers),
        authorisation_scheme=ref.authorisation_number_scheme,
        consent_required=bool(ref.consent_required),
        publication_consent_required=bool(ref.publication_consent_required),
        publishes_list=bool(ref.publishes_list), validity_years=ref.validity_years,
        launched=ref.launched or dt.date(2010, 1, 1), authority=administration.authority,
        tiers=tuple(t.code for t in ref.tiers),
    )


@functools.cache
def _home_programme(country: str) -> str | None:
    """The programme that certifies companies based in `country` (None: no programme)."""
    for code in programme_codes():
        if country in programme_profile(code).countries:
            return code
    return None


# --- the shared company universe ----------------------------------------------------------

class CompanyUniverse:
    """Companies shared between programmes; membership is derived from the seed alone."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._programmes = programme_codes()
        homes = [c for c in COUNTRIES if _home_programme(c) is not None]
        self._home_countries = homes
        self._home_weights = [float(COUNTRIES[c]["weight"]) for c in homes]
        self._members: dict[str, list[int]] = {}
        self._scanned = 0

    def _rng(self, j: int, purpose: str) -> random.Random:
        return random.Random(f"aeo-sim/{self.seed}/universe/{j}/{purpose}")

    def memberships(self, j: int) -> tuple[str, str, tuple[str, ...]]:
        """(home country, home programme, all programmes) of shared company `j`."""
        rng = self._rng(j, "membership")
        country = rng.choices(self._home_countries, self._home_weights)[0]
        home = _home_programme(country)
        assert home is not None
        partners = [p for p in _PARTNER_WEIGHTS if p != home and p in self._programmes]
        weights = [_PARTNER_WEIGHTS[p] for p in partners]
        extra: list[str] = []
        for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
            pick = rng.choices(partners, weights)[0]
            if pick not in extra:
                extra.append(pick)
        return country, home, (home, *extra)

    def joinable(self, programme: str) -> bool:
        """True when shared companies can be members of `programme`."""
        if programme in _PARTNER_WEIGHTS and programme in self._programmes:
            return True
        return any(_home_programme(country) == programme for country in self._home_countries)

    def member(self, programme: str, slot: int) -> int:
        """The shared company filling `programme`'s `slot`-th shared place."""
        found = self._members.setdefault(programme, [])
        while len(found) <= slot:
            # Scan further; record every programme's members on the way.
            j = self._scanned
            self._scanned += 1
            for code in self.memberships(j)[2]:
                self._members.setdefault(code, []).append(j)
            if self._scanned > 50_000_000:  # pragma: no cover - a programme nobody joins
                raise RuntimeError(f"no shared company joins {programme}")
        return found[slot]

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one universe per seed, kept for the run
    def company(self, j: int) -> Company:
        """Shared company `j` as its home registry knows it."""
        country, _, _ = self.memberships(j)
        return make_company(f"G{j:07d}", country, self._rng(j, "company"))


@functools.lru_cache(maxsize=32)
def company_universe(seed: int) -> CompanyUniverse:
    """The (cached) universe of `seed`."""
    return CompanyUniverse(seed)


# --- records --------------------------------------------------------------------------------

def _iso(day: dt.date) -> str:
    return day.isoformat()


def timestamp(day: dt.date, seconds: int) -> str:
    """ISO 8601 UTC timestamp `seconds` after midnight of `day`."""
    moment = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _date_between(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    if end <= start:
        return start
    return start + dt.timedelta(days=rng.randint(0, (end - start).days))


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


@dataclass(frozen=True)
class Placement:
    """Where record `index` of a programme comes from."""

    company: Company  # as this registry knows it (establishment, address)
    company_id: str  # ground truth
    unique: int  # input for identifier bijections (unique within the programme)
    home: bool  # the company's home registry (canonical name)
    rng: random.Random  # record-level randomness
    origin_country: str  # where the company (group) is based


class ProgrammeGenerator:
    """Generates record `index` of one programme for one seed."""

    def __init__(self, programme: str, seed: int, overlap: float = DEFAULT_OVERLAP) -> None:
        self.profile = programme_profile(programme)
        self.programme = programme
        self.seed = seed
        self.overlap_per_mille = max(0, min(1000, round(overlap * 1000)))
        self.universe = company_universe(seed)
        if not self.universe.joinable(programme):
            self.overlap_per_mille = 0  # no company of the universe ever joins it

    def is_shared(self, index: int) -> bool:
        """True when record `index` comes from the shared universe."""
        pm = self.overlap_per_mille
        return ((index + 1) * pm) // 1000 > (index * pm) // 1000

    def placement(self, index: int) -> Placement:
        """The company behind record `index` and how this registry sees it."""
        rng = random.Random(f"aeo-sim/{self.seed}/{self.programme}/{index}")
        profile = self.profile
        if not self.is_shared(index):
            country = rng.choices(profile.countries, profile.country_weights)[0]
            company = make_company(f"{self.programme}#{index}", country, rng)
            return Placement(company, company.company_id, 2 * index, True, rng, country)
        j = self.universe.member(self.programme, (index * self.overlap_per_mille) // 1000)
        company = self.universe.company(j)
        variant_rng = random.Random(f"aeo-sim/{self.seed}/universe/{j}/in/{self.programme}")
        if company.country in profile.countries:
            _, home, _ = self.universe.memberships(j)
            return Placement(company, company.company_id, 2 * j + 1, home == self.programme, rng,
                             company.country)
        if self.programme == "US-CTPAT" and variant_rng.random() < 0.5:
            # A foreign manufacturer: certified at its home address.
            return Placement(company, company.company_id, 2 * j + 1, False, rng, company.country)
        country = variant_rng.choices(profile.countries, profile.country_weights)[0]
        local = local_establishment(company, country, variant_rng)
        return Placement(local, company.company_id, 2 * j + 1, True, rng, company.country)

    def company_id(self, index: int) -> str:
        """Ground truth: the company behind record `index`."""
        if not self.is_shared(index):
            return f"{self.programme}#{index}"
        slot = (index * self.overlap_per_mille) // 1000
        return f"G{self.universe.member(self.programme, slot):07d}"

    def record(self, index: int) -> Record:
        """Record `index` at day 0 (a fresh dict every call)."""
        return self._build(self.placement(index))

    def new_record(self, index: int, day: dt.date) -> Record:
        """Record `index` as a new authorisation granted on `day`."""
        placement = self.placement(index)
        return self._build(placement, granted=day)

    # The record proper --------------------------------------------------------------------

    def _build(self, placement: Placement, granted: dt.date | None = None) -> Record:
        profile = self.profile
        rng = placement.rng
        company = placement.company
        variant_rng = random.Random(
            f"aeo-sim/{self.seed}/{self.programme}/variant/{placement.company_id}")
        if placement.home:
            name = company.legal_name
            street, city, postcode = company.street, company.city, company.postcode
        else:
            name = name_variant(company, variant_rng)
            street, city, postcode = address_variant(company, variant_rng)
        country = company.country

        categories = [weighted(rng, list(zip([c for c, _ in profile.categories],
                                             [int(w) for w in profile.category_weights],
                                             strict=True)))]
        if self.programme == "US-CTPAT":
            if country != "US":
                categories = ["foreign_manufacturer"]
            elif categories[0] == "foreign_manufacturer":
                categories = ["importer"]
            if categories[0] == "importer" and rng.random() < 0.12:
                categories.append("exporter")

        today = SIM_EPOCH
        if granted is not None:
            authorised = granted
            status = "valid"
        else:
            authorised = _date_between(rng, max(profile.launched, dt.date(2008, 1, 1)),
                                       today - dt.timedelta(days=20))
            status = weighted(rng, _STATUS_MIX)
        composite = len(profile.components(categories[0])) > 1
        if status == "partial" and not composite:
            status = "valid"
        if status == "valid_old":
            status = "valid"
        if status == "expired" and profile.validity_years is None:
            status = "withdrawn"
        years = profile.validity_years
        valid_from = authorised
        valid_until: dt.date | None = None
        if years:
            # Recertified every `years`: the current window holds today.
            while _add_years(valid_from, years) <= today:
                valid_from = _add_years(valid_from, years)
            valid_until = _add_years(valid_from, years) - dt.timedelta(days=1)
        status_date = authorised
        if status in ("suspended", "partial"):
            status_date = _date_between(rng, max(authorised, today - dt.timedelta(days=200)), today)
        elif status in ("revoked", "withdrawn"):
            status_date = _date_between(rng, authorised + dt.timedelta(days=90), today)
        elif status == "expired":
            assert years is not None
            valid_until = _date_between(rng, today - dt.timedelta(days=700),
                                        today - dt.timedelta(days=1))
            valid_from = _add_years(valid_until + dt.timedelta(days=1), -years)
            status_date = valid_until + dt.timedelta(days=1)
        elif status == "annulled":
            status_date = authorised  # retroactive: as if it never existed

        entries = []
        components = [c for cat in categories for c in profile.components(cat)]
        suspended_component = rng.choice(components) if status == "partial" else None
        for component in components:
            if status == "partial":
                comp_status = "suspended" if component == suspended_component else "valid"
                since = status_date if component == suspended_component else valid_from
            else:
                comp_status = status
                since = status_date if status != "valid" else valid_from
            entries.append({"code": component, "status": comp_status, "since": _iso(since)})
        overall = "valid" if status == "partial" else status

        trader_id = self._trader_id(company, placement, rng)
        if profile.tiers:
            for entry in entries:
                entry["tier"] = _tier(profile.tiers, entry["code"], trader_id)
        authorisation_number = self._authorisation_number(categories[0], company, trader_id,
                                                          placement, authorised)
        identifiers = self._identifiers(company, placement, rng, name, street, city, categories,
                                        authorisation_number, trader_id)
        if profile.consent_required:
            consent_share = rng.random() < 0.87
            consent_publish = profile.publishes_list and consent_share and rng.random() < 0.7
        else:
            consent_share = True
            consent_publish = profile.publishes_list
        authority = self._authority(company, rng)
        last_change = max(status_date, valid_from, authorised)
        if granted is None:
            last_change = _date_between(rng, last_change, today - dt.timedelta(days=1))
            changed_at = timestamp(last_change, rng.randint(6 * 3600, 20 * 3600))
        else:
            changed_at = timestamp(granted, rng.randint(6 * 3600, 20 * 3600))
        return {
            "programme": self.programme,
            "authorisation_number": authorisation_number,
            "trader_id_scheme": profile.primary_scheme,
            "trader_id": trader_id,
            "legal_name": name,
            "address": {"street": street, "city": city, "postcode": postcode,
                        "region": company.region, "country": country},
            "status": overall,
            "status_effective": _iso(status_date),
            "categories": entries,
            "authorised_on": _iso(authorised),
            "valid_from": _iso(valid_from),
            "valid_until": _iso(valid_until) if valid_until else None,
            "issuing_authority": authority,
            "identifiers": identifiers,
            "consent_share": consent_share,
            "consent_publish": consent_publish,
            "changed_at": changed_at,
        }

    def _trader_id(self, company: Company, placement: Placement, rng: random.Random) -> str:
        scheme = self.profile.primary_scheme
        unique = placement.unique
        if scheme == "CN_CUSTOMS":
            district = COUNTRIES["CN"]["customs_districts"].get(company.city, "2244")
            return numbers.cn_customs(district, unique)
        if scheme == "SG_UEN" and placement.origin_country != company.country:
            return numbers.sg_foreign_uen(unique)  # a foreign company's Singapore branch
        if scheme in ("EORI", "TCUIN"):
            return numbers.eori(company.country, rng, unique)
        return numbers.scheme_value(scheme, company.country, rng, unique)

    def _authorisation_number(self, category: str, company: Company, trader_id: str,
                              placement: Placement, authorised: dt.date) -> str:
        scheme = self.profile.authorisation_scheme
        serial = int(numbers.scrambled(placement.unique, 7)) % 1_000_000
        if scheme == "EU_AEO":
            return numbers.eu_aeo_number(company.country, category, placement.rng,
                                         placement.unique, authorised.year)
        if scheme == "CN_CUSTOMS":
            return "AEOCN" + trader_id
        if scheme == "SG_AEO":
            return "AEOSG" + trader_id.rjust(12, "0")
        if scheme is not None and scheme == self.profile.primary_scheme:
            return trader_id
        if scheme == "IN_AEO":
            return f"INAEO{category}{authorised.year}{serial:06d}"
        if scheme == "HK_AEO":
            return f"HKAEO{category[-1]}{serial:06d}"
        prefix = self.profile.administration
        return f"{prefix}AEO{authorised.year % 100:02d}{serial:06d}"

    def _identifiers(self, company: Company, placement: Placement, rng: random.Random, name: str,
                     street: str, city: str, categories: list[str],
                     authorisation_number: str, trader_id: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        profile = self.profile
        company_rng = random.Random(f"aeo-sim/{self.seed}/ids/{placement.company_id}")
        has_lei = company_rng.random() < (0.3 if placement.company_id.startswith("G") else 0.1)
        for scheme in profile.other_schemes:
            if scheme in (profile.authorisation_scheme, profile.primary_scheme):
                continue
            if scheme == "MID":
                out.extend(self._mids(company, rng, name, street, city, categories))
            elif scheme == "LEI":
                if has_lei:
                    lei = numbers.lei(company_rng, placement.unique)
                    out.append({"scheme": "LEI", "value": lei,
                                "linked": False})
            elif scheme == "CN_USCC":
                admin = next((code for city_name, _, code in COUNTRIES["CN"]["cities"]
                              if city_name == company.city), "310000")
                out.append({"scheme": "CN_USCC",
                            "value": numbers.cn_uscc(admin, rng, placement.unique),
                            "linked": False})
            elif scheme == "US_EIN":
                if company.country == "US" and rng.random() < 0.7:
                    out.append({"scheme": "US_EIN",
                                "value": numbers.scheme_value("US_EIN", "US", rng,
                                                              placement.unique),
                                "linked": False})
            elif rng.random() < 0.5:
                out.append({"scheme": scheme,
                            "value": numbers.scheme_value(scheme, company.country, rng,
                                                          placement.unique),
                            "linked": False})
        return out

    def _mids(self, company: Company, rng: random.Random, name: str, street: str, city: str,
              categories: list[str]) -> list[dict[str, Any]]:
        if self.programme == "EU-AEO":
            chance = 0.45 if categories[0] in ("AEOS", "AEOF") else 0.05
        elif self.programme == "US-CTPAT":
            chance = 1.0 if "foreign_manufacturer" in categories else 0.0
        else:
            chance = 0.2
        if rng.random() >= chance:
            return []
        sites = [(street, city, company.postcode, company.region)]
        if rng.random() < 0.15:
            other_street, other_city, other_postcode, _ = make_address(company.country, rng)
            sites.append((other_street, other_city, other_postcode, company.region))
        mids: list[dict[str, Any]] = []
        for site_street, site_city, _, region in sites:
            try:
                mid = build_mid(name, site_street, site_city, company.country, region)
            except IdentifierError:
                continue
            if all(m["value"] != mid for m in mids):
                mids.append({"scheme": "MID", "value": mid, "linked": True})
        return mids

    def _authority(self, company: Company, rng: random.Random) -> str:
        authorities = locale(company.country)["authorities"]
        if self.profile.administration == "EU" and authorities:
            return f"{company.country} {rng.choice(authorities)}"
        return f"{self.profile.administration} {self.profile.authority}"


# --- public functions -----------------------------------------------------------------------
