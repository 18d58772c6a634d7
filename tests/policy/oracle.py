"""The isolation oracle, written by hand from the shipped reference data.

Each row says, for a partner client acting for one programme and an operator of another
programme holding one category (with or without consent to sharing, in a given status),
whether the client may see the operator on a day, and what `verify` answers about it on
that day for a flow. Nothing here is computed from the reference files or the hub's code:
every expectation was read off `config/reference/arrangements.yaml` and
`programmes.yaml` (and the two manual steps below) by a person.

Manual steps the tests take before judging the rows (`MANUAL_STEPS`): EU-UK is suspended
from 2026-03-01 and resumed from 2026-04-01; US-NZ is terminated from 2026-05-01.

Facts used (from the reference files):
- ASEAN in force from 2024-08-01; members BN, MY, SG active from 2024-08-01, TH from
  2024-08-19, ID from 2024-10-01, PH from 2025-02-28 (LEVEL_2 only); KH, LA, MM, VN have
  no date (not implemented): no direction involving them is active.
- PACIFIC-ALLIANCE is signed only; SG-IN is signed only; EU-AD has no status at all.
- EU-CA in force from 2025-08-01, both directions from that day.
- EU-US: CBP recognises EU AEOS/AEOF (import); EU-CN: China recognises EU AEOS/AEOF (AEOC
  unconfirmed, so not recognised), the EU China's ACE only.
- US-JO and US-JP are one-way: the US recognises JO-GCL GOLDEN_LIST and JP-AEO exporters
  and manufacturers, on imports; neither partner recognises C-TPAT.
- US-NZ: NZ-SES recognises C-TPAT importers on exports only.
- EU-AEO, UK-AEO and US-CTPAT require consent to sharing; the others do not.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

D = dt.date

#: (arrangement, action, from) applied through the arrangements service before judging.
MANUAL_STEPS = (
    ("EU-UK", "suspend", D(2026, 3, 1)),
    ("EU-UK", "resume", D(2026, 4, 1)),
    ("US-NZ", "terminate", D(2026, 5, 1)),
)

UNKNOWN = ("unknown_trader", ("UNKNOWN_IDENTIFIER",))
RECOGNISED = ("recognised", ())


class Row(NamedTuple):
    client: str          # the client's programme
    programme: str       # the operator's programme
    category: str        # the one category it holds (valid since 2020), `code@tier`
    consent: bool        # consent to sharing
    day: dt.date         # the day of the request (and of the verify question)
    visible: bool        # may the client see the operator that day?
    decision: str        # what verify answers that day for `flow`
    reasons: tuple[str, ...]
    status: str = "valid"
    flow: str = "import"


def hidden(client: str, programme: str, category: str, consent: bool, day: dt.date,
           status: str = "valid") -> Row:
    """A row whose operator the client may not see: verify knows no such trader."""
    return Row(client, programme, category, consent, day, False, *UNKNOWN, status=status)


def shown(client: str, programme: str, category: str, consent: bool, day: dt.date,
          decision: tuple[str, tuple[str, ...]] = RECOGNISED, status: str = "valid",
          flow: str = "import") -> Row:
    return Row(client, programme, category, consent, day, True, *decision, status=status,
               flow=flow)


T, F = True, False
SEP24 = D(2024, 9, 1)
MAR25 = D(2025, 3, 15)
JUL31 = D(2025, 7, 31)
AUG01 = D(2025, 8, 1)
FEB26 = D(2026, 2, 15)
MAR26 = D(2026, 3, 15)
APR26 = D(2026, 4, 15)
JUN26 = D(2026, 6, 15)

ROWS: tuple[Row, ...] = (
    # ASEAN: Cambodia has not implemented the AAMRA, so no member shares with KH and KH
    # shares with no member, whatever the day.
    hidden("KH-AEO", "SG-STP", "STP_PLUS", T, JUN26),
    hidden("KH-AEO", "MY-AEO", "AEO", T, JUN26),
    hidden("KH-AEO", "TH-AEO", "AEO", T, MAR25),
    hidden("SG-STP", "KH-AEO", "AEO", T, JUN26),
    hidden("BN-AEO", "VN-AEO", "AEO", T, JUN26),
    # ASEAN members that had started on the day.
    shown("SG-STP", "MY-AEO", "AEO", T, SEP24),
    shown("SG-STP", "TH-AEO", "AEO", T, SEP24),
    shown("TH-AEO", "BN-AEO", "AEO", T, SEP24),
    shown("MY-AEO", "SG-STP", "STP", T, JUN26),
    # Indonesia from 2024-10-01, the Philippines (LEVEL_2 only) from 2025-02-28.
    hidden("SG-STP", "ID-AEO", "AEO", T, SEP24),
    shown("SG-STP", "ID-AEO", "AEO", T, MAR25),
    hidden("MY-AEO", "PH-AEO", "LEVEL_2", T, SEP24),
    shown("MY-AEO", "PH-AEO", "LEVEL_2", T, MAR25),
    hidden("MY-AEO", "PH-AEO", "LEVEL_1", T, MAR25),
    # Signed, not in force: the Pacific Alliance, Singapore-India; EU-Andorra has no
    # status at all.
    hidden("MX-OEA", "PE-OEA", "OEA", T, JUN26),
    hidden("CO-OEA", "CL-OEA", "OEA", T, JUN26),
    hidden("IN-AEO", "SG-STP", "STP", T, JUN26),
    hidden("SG-STP", "IN-AEO", "T1", T, JUN26),
    hidden("AD-AEO", "EU-AEO", "AEOS", T, JUN26),
    hidden("EU-AEO", "AD-AEO", "AEO", T, JUN26),
    # EU-US (CBP recognises EU AEOS/AEOF), consent required by the EU.
    shown("US-CTPAT", "EU-AEO", "AEOS", T, JUN26),
    shown("US-CTPAT", "EU-AEO", "AEOF", T, JUN26),
    hidden("US-CTPAT", "EU-AEO", "AEOS", F, JUN26),
    hidden("US-CTPAT", "EU-AEO", "AEOC", T, JUN26),
    # A suspended authorisation stays visible (partners must learn of it), not recognised.
    shown("US-CTPAT", "EU-AEO", "AEOS", T, JUN26, ("not_recognised", ("STATUS_SUSPENDED",)),
          status="suspended"),
    # No arrangement between the US and Switzerland.
    hidden("US-CTPAT", "CH-AEO", "AEO", T, JUN26),
    shown("CH-AEO", "EU-AEO", "AEOS", T, JUN26),
    hidden("CH-AEO", "EU-AEO", "AEOS", F, JUN26),
    shown("EU-AEO", "CH-AEO", "AEO", F, JUN26),
    # EU-CN: AEOC is only "unconfirmed" for China; the EU recognises ACE, not GCE.
    hidden("CN-AEO", "EU-AEO", "AEOC", T, JUN26),
    shown("CN-AEO", "EU-AEO", "AEOF", T, JUN26),
    shown("EU-AEO", "CN-AEO", "ACE", F, JUN26),
    hidden("EU-AEO", "CN-AEO", "GCE", F, JUN26),
    # One-way arrangements.
    shown("US-CTPAT", "JO-GCL", "GOLDEN_LIST", F, JUN26),
    hidden("JO-GCL", "US-CTPAT", "importer", T, JUN26),
    shown("US-CTPAT", "JP-AEO", "exporter", F, JUN26),
    shown("US-CTPAT", "JP-AEO", "exporter", F, JUN26,
          ("not_recognised", ("FLOW_NOT_COVERED",)), flow="export"),
    hidden("US-CTPAT", "JP-AEO", "importer", F, JUN26),
    hidden("JP-AEO", "US-CTPAT", "importer", T, JUN26),
    # EU-CA from 2025-08-01: the first day counts.
    hidden("CA-PIP", "EU-AEO", "AEOS", T, JUL31),
    shown("CA-PIP", "EU-AEO", "AEOS", T, AUG01),
    hidden("EU-AEO", "CA-PIP", "PIP", F, JUL31),
    shown("EU-AEO", "CA-PIP", "PIP", F, AUG01),
    # US-CA: CBSA recognises every C-TPAT category, with the member's consent.
    shown("CA-PIP", "US-CTPAT", "importer", T, JUN26),
    hidden("CA-PIP", "US-CTPAT", "importer", F, JUN26),
    shown("CA-PIP", "KR-AEO", "AA", F, JUN26),
    # EU-UK suspended from 2026-03-01, resumed from 2026-04-01; the EU recognises UK AEOS.
    shown("UK-AEO", "EU-AEO", "AEOS", T, FEB26),
    hidden("UK-AEO", "EU-AEO", "AEOS", T, MAR26),
    shown("UK-AEO", "EU-AEO", "AEOS", T, APR26),
    hidden("EU-AEO", "UK-AEO", "AEOS", T, MAR26),
    hidden("EU-AEO", "UK-AEO", "AEOC", T, APR26),
    shown("EU-AEO", "UK-AEO", "AEOS", T, APR26),
    # US-NZ terminated from 2026-05-01; NZ-SES recognises C-TPAT importers on exports only.
    shown("US-CTPAT", "NZ-SES", "SES", F, APR26),
    hidden("US-CTPAT", "NZ-SES", "SES", F, JUN26),
    shown("NZ-SES", "US-CTPAT", "importer", T, APR26,
          ("not_recognised", ("FLOW_NOT_COVERED",))),
    shown("NZ-SES", "US-CTPAT", "importer", T, APR26, flow="export"),
    hidden("NZ-SES", "US-CTPAT", "importer", T, JUN26),
    # EU-US: the EU sees C-TPAT importers that opted in, and recognises the validated
    # tiers (2 and 3) only; the tier decides recognition, not visibility.
    shown("EU-AEO", "US-CTPAT", "importer@tier2", T, JUN26),
    shown("EU-AEO", "US-CTPAT", "importer@tier3", T, JUN26),
    shown("EU-AEO", "US-CTPAT", "importer@tier1", T, JUN26,
          ("not_recognised", ("TIER_NOT_RECOGNISED",))),
    hidden("EU-AEO", "US-CTPAT", "importer@tier2", F, JUN26),
    hidden("EU-AEO", "US-CTPAT", "customs_broker@tier2", T, JUN26),
)
