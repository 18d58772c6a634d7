"""Render canonical records as the node protocol's JSON, CSV and XML lines."""

from __future__ import annotations

import csv
import io
import json
from typing import Any
from xml.sax.saxutils import escape, quoteattr

#: CSV columns of the node protocol, in order.
CSV_COLUMNS = ("programme", "authorisation_number", "trader_id_scheme", "trader_id",
               "legal_name", "street", "city", "postcode", "region", "country", "status",
               "status_effective", "categories", "authorised_on", "valid_from", "valid_until",
               "issuing_authority", "identifiers", "consent_share", "consent_publish",
               "changed_at")

_ADDRESS = ("street", "city", "postcode", "region", "country")
XML_NAMESPACE = "urn:aeohub:node:1"


def json_line(record: dict[str, Any]) -> bytes:
    """Compact JSON (UTF-8) of one record or deletion."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def csv_header() -> bytes:
    """The CSV header line."""
    return (",".join(CSV_COLUMNS) + "\r\n").encode()


def csv_line(record: dict[str, Any]) -> bytes:
    """One CSV row (with line end)."""
    address = record.get("address") or {}
    row = []
    for column in CSV_COLUMNS:
        if column in _ADDRESS:
            value: Any = address.get(column)
        elif column == "categories":
            value = "|".join(f"{c.get('code')}:{c.get('status')}:{_text(c.get('since'))}"
                             + (f":{c['tier']}" if c.get("tier") else "")
                             for c in record.get("categories") or [])
        elif column == "identifiers":
            value = "|".join(
                f"{i.get('scheme')}:{i.get('value')}:{'linked' if i.get('linked') else 'declared'}"
                for i in record.get("identifiers") or [])
        else:
            value = record.get(column)
        row.append(_text(value))
    buffer = io.StringIO()
    csv.writer(buffer).writerow(row)
    return buffer.getvalue().encode()


def xml_open(programme: str, count: int) -> bytes:
    """The XML declaration and the opening `registry` element."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<registry xmlns="{XML_NAMESPACE}" '
            f'programme={quoteattr(programme)} count="{count}">\n').encode()


def xml_close() -> bytes:
    """The closing `registry` element."""
    return b"</registry>\n"


def xml_line(record: dict[str, Any]) -> bytes:
    """One `operator` element (with line end); None-valued fields are left out."""
    parts = ["<operator>"]
    for name in ("programme", "authorisation_number", "trader_id_scheme", "trader_id",
                 "legal_name"):
        if record.get(name) is not None:
            parts.append(f"<{name}>{escape(_text(record[name]))}</{name}>")
    address = record.get("address") or {}
    parts.append("<address>")
    for name in _ADDRESS:
        if address.get(name) is not None:
            parts.append(f"<{name}>{escape(_text(address[name]))}</{name}>")
    parts.append("</address>")
    for name in ("status", "status_effective"):
        if record.get(name) is not None:
            parts.append(f"<{name}>{escape(_text(record[name]))}</{name}>")
    parts.append("<categories>")
    for entry in record.get("categories") or []:
        parts.append(f"<category code={quoteattr(_text(entry.get('code')))} "
                     f"status={quoteattr(_text(entry.get('status')))} "
                     f"since={quoteattr(_text(entry.get('since')))}"
                     + (f" tier={quoteattr(_text(entry['tier']))}" if entry.get("tier") else "")
                     + "/>")
    parts.append("</categories>")
    for name in ("authorised_on", "valid_from", "valid_until", "issuing_authority"):
        if record.get(name) is not None:
            parts.append(f"<{name}>{escape(_text(record[name]))}</{name}>")
    parts.append("<identifiers>")
    for entry in record.get("identifiers") or []:
        linked = "true" if entry.get("linked") else "false"
        parts.append(f"<identifier scheme={quoteattr(_text(entry.get('scheme')))} "
                     f'linked="{linked}">{escape(_text(entry.get("value")))}</identifier>')
    parts.append("</identifiers>")
    for name in ("consent_share", "consent_publish", "changed_at"):
        if record.get(name) is not None:
            parts.append(f"<{name}>{escape(_text(record[name]))}</{name}>")
    parts.append("</operator>\n")
    return "".join(parts).encode()
