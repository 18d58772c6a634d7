"""Match quality on a labelled set drawn from the simulator (seed fixed before tuning).

Positives: registry records with perturbed names and addresses. Hard negatives: companies
the registry does not hold, sister companies sharing a name part, and the same name in
another city. An `ambiguous` answer counts as a miss. Prints precision, recall and F1
beside the exact-normalised-name baseline, and the blocking recall.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict

import pytest

from hub.db import Database
from hub.identifiers import normalise_name
from hub.recognition.matching import match
from hub.recognition.scoring import DEFAULT_SETTINGS, match_index, prepare
from hub.recognition.trader import DeclaredTrader
from tests.benchmarks.bench_match_registry import SEED, load_registry, positive_query

_WORDS = ["Holding", "Chemicals", "Textiles", "Foods", "Electronics", "Shipping", "Pharma",
          "Packaging", "Machinery", "Trading"]


def _metrics(tp: int, fp: int, positives: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / positives if positives else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def test_match_quality(committed_db: Database, backend: str, bench_scale: str) -> None:
    if backend != "sqlite":
        pytest.skip("match quality does not depend on the database")
    loaded = load_registry(committed_db, bench_scale)
    rng = random.Random(f"bench-match/{SEED}")
    ids = sorted(loaded.records)
    n_pos = 2000 if bench_scale == "full" else 300
    n_neg = 1000 if bench_scale == "full" else 150
    companies = set(loaded.company_of.values())
    by_country: dict[str, list[int]] = defaultdict(list)
    for op_id in ids:
        by_country[loaded.records[op_id]["address"]["country"]].append(op_id)

    positives = [(positive_query(loaded.records[i], rng), loaded.company_of[i], i)
                 for i in rng.sample(ids, n_pos)]
    negatives: list[tuple[str, DeclaredTrader]] = []
    # Companies the registry does not hold (later records of the same generators).
    per_programme = n_neg // 3 // len(loaded.generators) + 1
    for _code, generator in sorted(loaded.generators.items()):
        number, found = 10**6, 0
        while found < per_programme:
            if generator.company_id(number) not in companies:
                negatives.append(("absent", positive_query(generator.record(number), rng)))
                found += 1
            number += 1
    for op_id in rng.sample(ids, n_neg // 3):
        record = loaded.records[op_id]
        first = record["legal_name"].split()[0]
        other = rng.choice(by_country[record["address"]["country"]])
        address = loaded.records[other]["address"]
        negatives.append(("sister", DeclaredTrader(
            name=f"{first} {rng.choice(_WORDS)} {rng.choice(['GmbH', 'Ltd', 'Inc.', ''])}",
            street=address["street"], city=address["city"], country=address["country"])))
    for op_id in rng.sample(ids, n_neg // 3):
        record = loaded.records[op_id]
        same_country = [o for o in by_country[record["address"]["country"]]
                        if loaded.records[o]["address"]["city"] != record["address"]["city"]]
        if not same_country:
            continue
        address = loaded.records[rng.choice(same_country)]["address"]
        negatives.append(("other_city", DeclaredTrader(
            name=record["legal_name"], street=address["street"], city=address["city"],
            postcode=address["postcode"], country=address["country"])))

    session = committed_db.sessionmaker()
    try:
        started = time.perf_counter()
        index = match_index(session)
        build = time.perf_counter() - started
        exact: dict[tuple[str, str], list[int]] = defaultdict(list)
        for position, op_id in enumerate(index.ids):
            exact[(index.items[position].name, index.items[position].country)].append(op_id)

        def baseline(ref: DeclaredTrader) -> int | None:
            hits = exact.get((normalise_name(ref.name or ""), (ref.country or "").upper()), [])
            return hits[0] if len(hits) == 1 else None

        tp = fp = btp = bfp = blocked = ambiguous = 0
        for ref, company, _op_id in positives:
            query = prepare(ref.name, ref.street, ref.city, ref.postcode, ref.country)
            positions = index.block(query, DEFAULT_SETTINGS)
            if any(loaded.company_of.get(index.ids[p]) == company for p in positions):
                blocked += 1
            result = match(session, ref)
            ambiguous += result.decision == "ambiguous"
            if result.decision == "match" and result.best is not None:
                if loaded.company_of.get(result.best.operator_id) == company:
                    tp += 1
                else:
                    fp += 1
            hit = baseline(ref)
            if hit is not None:
                if loaded.company_of.get(hit) == company:
                    btp += 1
                else:
                    bfp += 1
        neg_fp: dict[str, int] = defaultdict(int)
        neg_n: dict[str, int] = defaultdict(int)
        for kind, ref in negatives:
            neg_n[kind] += 1
            result = match(session, ref)
            if result.decision == "match":
                fp += 1
                neg_fp[kind] += 1
            if baseline(ref) is not None:
                bfp += 1
    finally:
        session.close()

    precision, recall, f1 = _metrics(tp, fp, len(positives))
    bprecision, brecall, bf1 = _metrics(btp, bfp, len(positives))
    print(f"\nmatch quality ({bench_scale}, seed {SEED}, {loaded.count} operators, database "
          f"{backend}; index built in {build:.2f} s)")
    print(f"  {len(positives)} positives, {len(negatives)} hard negatives "
          f"({', '.join(f'{k} {v}' for k, v in sorted(neg_n.items()))})")
    print(f"  {'method':<28}{'precision':>10}{'recall':>10}{'F1':>10}")
    print(f"  {'exact normalised name':<28}{bprecision:>10.4f}{brecall:>10.4f}{bf1:>10.4f}")
    print(f"  {'hub matcher':<28}{precision:>10.4f}{recall:>10.4f}{f1:>10.4f}")
    print(f"  blocking recall {blocked / len(positives):.4f} "
          f"({DEFAULT_SETTINGS.block_size} candidates kept)")
    print(f"  ambiguous answers on positives: {ambiguous}; false positives on negatives: "
          f"{dict(neg_fp)}")
    assert tp > 0
