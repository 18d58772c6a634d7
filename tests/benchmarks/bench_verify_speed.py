"""Speed against a simulated registry (60,000 operators at full scale), on each backend.

Prints verify-by-identifier throughput (batched `verify_many` and one-by-one `verify`)
and the time of 1,000 name+address matches (after the in-memory index is built, whose
build time is printed too). Timings are printed, never asserted.
"""

from __future__ import annotations

import datetime as dt
import random
import time

from hub.db import Database
from hub.recognition.matching import match
from hub.recognition.scoring import match_index
from hub.recognition.service import verify, verify_many, verify_many_dicts
from hub.recognition.trader import DeclaredTrader
from tests.benchmarks.bench_match_registry import SEED, load_registry, positive_query

DAY = dt.date(2025, 3, 3)
NOW = dt.datetime(2025, 3, 4, tzinfo=dt.UTC)


def test_verify_speed(committed_db: Database, backend: str, bench_scale: str) -> None:
    loaded = load_registry(committed_db, bench_scale)
    rng = random.Random(f"bench-verify/{SEED}")
    ids = sorted(loaded.records)
    refs = [DeclaredTrader(scheme=loaded.identifiers[i][0], value=loaded.identifiers[i][1])
            for i in (rng.choice(ids) for _ in range(10000))]
    names = [positive_query(loaded.records[i], rng) for i in rng.sample(ids, 1000)]
    session = committed_db.sessionmaker()
    try:
        verify_many(session, refs[:10], "US-CTPAT", DAY, now=NOW)  # warm the caches
        started = time.perf_counter()
        batch = verify_many(session, refs, "US-CTPAT", DAY, now=NOW)
        batch_seconds = time.perf_counter() - started
        started = time.perf_counter()
        answers = verify_many_dicts(session, refs, "US-CTPAT", DAY, now=NOW)
        dicts_seconds = time.perf_counter() - started
        single_n = 2000 if bench_scale == "full" else 500
        started = time.perf_counter()
        for ref in refs[:single_n]:
            verify(session, ref, "EU-AEO", DAY, now=NOW)
        single_seconds = time.perf_counter() - started
        started = time.perf_counter()
        match_index(session)
        build_seconds = time.perf_counter() - started
        started = time.perf_counter()
        matched = sum(match(session, ref).decision == "match" for ref in names)
        match_seconds = time.perf_counter() - started
    finally:
        session.close()
    decisions = {d: sum(x.decision == d for x in batch) for d in
                 ("recognised", "not_recognised", "unknown_trader", "ambiguous")}
    print(f"\nverify speed ({bench_scale}, {loaded.count} operators, database {backend})")
    print(f"  {'measure':<44}{'figure':>16}")
    print(f"  {'verify_many, 10,000 identifiers':<44}{batch_seconds:>14.3f} s"
          f"  ({len(refs) / batch_seconds:,.0f}/s)")
    print(f"  {'verify_many_dicts (answers as dicts), 10,000':<44}{dicts_seconds:>14.3f} s")
    print(f"  {f'verify one by one, {single_n} identifiers':<44}"
          f"{single_n / single_seconds:>12,.0f} /s")
    print(f"  {'name+address index build':<44}{build_seconds:>14.3f} s")
    print(f"  {'1,000 name+address matches':<44}{match_seconds:>14.3f} s"
          f"  ({matched} matched)")
    print(f"  batch decisions: {decisions}")
    assert decisions["unknown_trader"] == 0
    assert [a["decision"] for a in answers] == [d.decision for d in batch]
