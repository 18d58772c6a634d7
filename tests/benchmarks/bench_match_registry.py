"""Shared by the recognition benchmarks: a simulated multi-programme registry, bulk-loaded.

Records come from `hub.sim` (deterministic, with ground truth `company_id`); they are
written with bulk inserts (the benchmarks measure reading, not syncing). The query
perturbations below are the benchmark's own and deliberately differ from the simulator's
variants: legal forms changed or dropped, transliteration, abbreviations, word order,
typos, reformatted addresses and missing postcodes.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from dataclasses import dataclass
from typing import Any

from anyascii import anyascii
from sqlalchemy import Table, insert, select, text
from sqlalchemy.orm import Session

from hub.arrangements.service import load_reference_data
from hub.db import Database
from hub.identifiers import IdentifierError, is_known_scheme, normalise
from hub.recognition.trader import DeclaredTrader
from hub.registry.models import Operator, OperatorIdentifier, Programme
from hub.sim.generator import ProgrammeGenerator

#: Fixed before any tuning of the matcher.
SEED = 20251128

FULL_SIZES = {"EU-AEO": 20000, "US-CTPAT": 12000, "CN-AEO": 6000, "IN-AEO": 5000,
              "JP-AEO": 3000, "KR-AEO": 3000, "SG-STP": 3000, "MY-AEO": 2000,
              "CA-PIP": 2000, "UK-AEO": 2000, "CH-AEO": 1000, "NO-AEO": 1000}
SMOKE_SIZES = {"EU-AEO": 1500, "US-CTPAT": 800, "JP-AEO": 300, "SG-STP": 200,
               "CN-AEO": 200}


def sizes(scale: str) -> dict[str, int]:
    return FULL_SIZES if scale == "full" else SMOKE_SIZES


@dataclass
class Loaded:
    """What the benchmarks need to know about the loaded registry."""

    company_of: dict[int, str]  # operator id -> company id (ground truth)
    records: dict[int, dict[str, Any]]  # operator id -> the published record
    identifiers: dict[int, tuple[str, str]]  # operator id -> (scheme, normalised trader id)
    generators: dict[str, ProgrammeGenerator]
    count: int


def _norm(scheme: str, value: str) -> str:
    if is_known_scheme(scheme):
        try:
            return normalise(scheme, value)
        except IdentifierError:
            pass
    return "".join(value.split()).upper()


def load_registry(database: Database, scale: str) -> Loaded:
    """Reference data plus simulated registries, committed to `database`."""
    now = dt.datetime(2025, 3, 3, 12, tzinfo=dt.UTC)
    company_of: dict[int, str] = {}
    records: dict[int, dict[str, Any]] = {}
    identifiers: dict[int, tuple[str, str]] = {}
    generators: dict[str, ProgrammeGenerator] = {}
    with database.session_scope() as session:
        load_reference_data(session)
        session.flush()
        programmes = {p.code: p for p in session.scalars(select(Programme))}
        next_id = (session.scalar(select(Operator.id).order_by(Operator.id.desc())) or 0) + 1
        for code, size in sizes(scale).items():
            generator = ProgrammeGenerator(code, SEED)
            generators[code] = generator
            programme = programmes[code]
            rows, ident_rows, seen = [], [], set()
            for i in range(size):
                record = generator.record(i)
                key = _norm(record["trader_id_scheme"], record["trader_id"])
                if key in seen:
                    continue
                seen.add(key)
                address = record["address"]
                op_id = next_id
                next_id += 1
                rows.append({
                    "id": op_id, "programme_id": programme.id, "stable_key": key,
                    "authorisation_number": record["authorisation_number"] or key,
                    "trader_id_scheme": record["trader_id_scheme"], "trader_id": key,
                    "legal_name": record["legal_name"], "street": address["street"],
                    "city": address["city"], "postcode": address["postcode"],
                    "region": address["region"], "country": address["country"],
                    "status": record["status"],
                    "status_effective": dt.date.fromisoformat(record["status_effective"]),
                    "categories": record["categories"],
                    "authorised_on": dt.date.fromisoformat(record["authorised_on"]),
                    "valid_from": dt.date.fromisoformat(record["valid_from"]),
                    "valid_until": (dt.date.fromisoformat(record["valid_until"])
                                    if record["valid_until"] else None),
                    "consent_share": record["consent_share"],
                    "consent_publish": record["consent_publish"], "warnings": [],
                    "created_at": now, "updated_at": now, "last_effective": dt.date(2025, 3, 3),
                })
                pairs = {(record["trader_id_scheme"], key, True)}
                for ident in record["identifiers"]:
                    pairs.add((ident["scheme"], _norm(ident["scheme"], ident["value"]),
                               bool(ident["linked"])))
                for scheme, value, linked in sorted(pairs):
                    ident_rows.append({"operator_id": op_id, "scheme": scheme, "value": value,
                                       "origin": "declared", "linked": linked})
                company_of[op_id] = generator.company_id(i)
                records[op_id] = record
                identifiers[op_id] = (record["trader_id_scheme"], key)
            operator_table, identifier_table = Operator.__table__, OperatorIdentifier.__table__
            assert isinstance(operator_table, Table) and isinstance(identifier_table, Table)
            for start in range(0, len(rows), 2000):
                session.execute(insert(operator_table), rows[start:start + 2000])
            for start in range(0, len(ident_rows), 4000):
                session.execute(insert(identifier_table), ident_rows[start:start + 4000])
        for programme in programmes.values():
            if programme.code in generators:
                programme.data_version = now
        if database.dialect == "postgresql":
            session.flush()

            session.execute(text("SELECT setval(pg_get_serial_sequence('operator', 'id'), "
                                 "(SELECT max(id) FROM operator))"))
    return Loaded(company_of, records, identifiers, generators, len(company_of))


# --------------------------------------------------------------------------- perturbations

_LEGAL_FORMS = {
    "GmbH": ["G.m.b.H.", "Gesellschaft mit beschränkter Haftung", ""],
    "GmbH & Co. KG": ["GmbH & Co KG", "GmbH u. Co. KG", "KG", ""],
    "Inc.": ["Incorporated", "Inc", "Corp.", ""], "LLC": ["L.L.C.", "Ltd", ""],
    "Ltd": ["Limited", "Ltd.", ""], "Limited": ["Ltd", "Ltd.", ""],
    "Co., Ltd.": ["Company Limited", "Co. Ltd", "Ltd", ""],
    "S.A.": ["SA", "Sociedad Anónima", ""], "S.L.": ["SL", "S.L.U.", ""],
    "SAS": ["S.A.S.", ""], "S.p.A.": ["SpA", ""], "B.V.": ["BV", ""], "Pte. Ltd.": [
        "Pte Ltd", "Private Limited", ""], "Sdn. Bhd.": ["Sdn Bhd", ""],
    "K.K.": ["Kabushiki Kaisha", "Co., Ltd.", ""],
}
_ABBREVIATIONS = [("International", "Intl"), ("Company", "Co"), ("Corporation", "Corp"),
                  ("Manufacturing", "Mfg"), ("Logistics", "Log."), ("Industries", "Ind."),
                  (" and ", " & "), (" & ", " and "), ("Technology", "Tech")]
_GERMAN = [("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")]
_STREETS = [("Straße", "Str."), ("Strasse", "Str"), ("Street", "St"), ("Road", "Rd."),
            ("Avenue", "Av."), ("Avenida", "Av."), ("Boulevard", "Blvd"), ("Calle", "C/")]


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(["delete", "swap", "replace", "insert"])
    if kind == "delete":
        return word[:i] + word[i + 1:]
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    letter = rng.choice("aeiounrst")
    if kind == "replace":
        return word[:i] + letter + word[i + 1:]
    return word[:i] + letter + word[i:]


def perturb_name(name: str, rng: random.Random) -> str:
    """One to three realistic changes to a company name."""
    for _ in range(rng.choice([1, 1, 2, 2, 3])):
        op = rng.choice(["legal_form", "transliterate", "abbreviate", "order", "typo", "case"])
        if op == "legal_form":
            for form, variants in sorted(_LEGAL_FORMS.items(), key=lambda kv: -len(kv[0])):
                if name.endswith(form):
                    name = (name[: -len(form)].rstrip(" ,") + " " + rng.choice(variants)).strip()
                    break
        elif op == "transliterate":
            for a, b in _GERMAN:
                name = name.replace(a, b)
            name = anyascii(name) if rng.random() < 0.5 else name
        elif op == "abbreviate":
            for long, short in _ABBREVIATIONS:
                if long in name:
                    name = name.replace(long, short, 1)
                    break
        elif op == "order":
            words = name.split()
            if len(words) >= 3:
                words[0], words[1] = words[1], words[0]
                name = " ".join(words)
        elif op == "typo":
            words = name.split()
            i = max(range(len(words)), key=lambda k: (len(words[k]), -k))
            words[i] = _typo(words[i], rng)
            name = " ".join(words)
        else:
            name = name.upper() if rng.random() < 0.5 else name.lower()
    return name


def perturb_address(record: dict[str, Any], rng: random.Random
                    ) -> tuple[str | None, str | None, str | None]:
    address = record["address"]
    street, city, postcode = address["street"], address["city"], address["postcode"]
    op = rng.choice(["abbreviate", "reorder", "ascii", "case", "none"])
    if street and op == "abbreviate":
        for long, short in _STREETS:
            street = street.replace(long, short)
    elif street and op == "reorder":
        m = re.fullmatch(r"(.*?)[ ,]+(\d+\w?)", street)
        street = f"{m.group(2)} {m.group(1)}" if m else street
    elif op == "ascii":
        street, city = anyascii(street or ""), anyascii(city or "")
    elif op == "case":
        street, city = (street or "").upper(), (city or "").upper()
    if rng.random() < 0.5:
        postcode = None
    elif postcode:
        postcode = postcode.replace(" ", "").replace("-", "")
    return street, city, postcode


def positive_query(record: dict[str, Any], rng: random.Random) -> DeclaredTrader:
    street, city, postcode = perturb_address(record, rng)
    return DeclaredTrader(name=perturb_name(record["legal_name"], rng), street=street,
                           city=city, postcode=postcode, country=record["address"]["country"])


def session_for(database: Database) -> Session:
    return database.sessionmaker()
