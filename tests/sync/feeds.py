"""Small, valid EU AEO feeds written as the simulator's CSV, for sync tests."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from connectors.formats import CANONICAL_COLUMNS


def eu_row(n: int, **overrides: Any) -> dict[str, str]:
    row = {
        "programme": "EU-AEO",
        "authorisation_number": f"DEAEOF{n:05d}/19",
        "trader_id_scheme": "EORI",
        "trader_id": f"DE{n:015d}",
        "legal_name": f"Muster Logistik {n} GmbH",
        "street": f"Hafenstrasse {n}",
        "city": "Hamburg",
        "postcode": "20457",
        "region": "",
        "country": "DE",
        "status": "valid",
        "status_effective": "2019-03-01",
        "categories": "AEOC:valid:2019-03-01|AEOS:valid:2019-03-01",
        "authorised_on": "2019-03-01",
        "valid_from": "2019-03-01",
        "valid_until": "",
        "issuing_authority": "DE Hauptzollamt Hamburg",
        "identifiers": "",
        "consent_share": "true",
        "consent_publish": "true",
        "changed_at": "2024-01-01T00:00:00Z",
    }
    row.update({k: str(v) for k, v in overrides.items()})
    return row


def write_feed(path: Path, rows: Iterable[Mapping[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CANONICAL_COLUMNS))
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    return path
