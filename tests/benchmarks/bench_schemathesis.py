"""Schemathesis at length: every operation with many generated examples, then the
stateful phase with many scenarios, against a live hub on each backend.

The same hub, tokens and checks as `tests/api/test_api_schemathesis.py` (every check
schemathesis has; the stateful ones too), larger: at full size 50 valid and 25 invalid
requests an operation and 100 scenarios of up to 20 linked steps (minutes a backend).
Prints the cases sent and the failures found per phase; asserts there are none.

    make bench                                        # full
    pytest tests/benchmarks/bench_schemathesis.py -s  # smoke: a few cases, seconds
"""

from __future__ import annotations

import time

import pytest

from hub.auth import policy
from tests.api.test_api_schemathesis import run_operations, run_stateful, seeded_hub
from tests.auth.hubkit import load_reference

#: valid and invalid examples an operation; stateful scenarios and steps in each
SCALES = {"smoke": (1, 1, 2, 4), "full": (50, 25, 100, 20)}


@pytest.mark.benchmark
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:jsonschema.RefResolver is deprecated:DeprecationWarning")
def test_bench_schemathesis(app, committed_db, backend, bench_scale, tmp_path):
    examples, negative, scenarios, steps = SCALES[bench_scale]
    load_reference(committed_db)
    policy.clear_cache()
    hub = seeded_hub(app, committed_db, tmp_path)
    live = next(hub)
    try:
        started = time.perf_counter()
        operations = run_operations(live, examples, negative)
        operations_seconds = time.perf_counter() - started
        started = time.perf_counter()
        stateful = run_stateful(live, scenarios, steps)
        stateful_seconds = time.perf_counter() - started
    finally:
        hub.close()
    print(f"\nschemathesis ({bench_scale}, database {backend})")
    print(f"  {'phase':<36}{'cases':>8}{'failures':>10}{'seconds':>10}")
    print(f"  {f'operations ({examples} + {negative} invalid each)':<36}{operations.cases:>8}"
          f"{len(operations.failures):>10}{operations_seconds:>10.1f}")
    print(f"  {f'stateful ({scenarios} x {steps} steps)':<36}{stateful.cases:>8}"
          f"{len(stateful.failures):>10}{stateful_seconds:>10.1f}")
    print(f"  operations exercised: {len(operations.seen)}; stateful steps by answer: "
          f"{len(stateful.seen)}")
    failures = operations.failures + stateful.failures
    assert not failures, "\n".join(failures[:10])
    assert operations.cases >= examples * len(operations.seen) // 2
