"""``xml_snapshot``: a registry published as XML, read from a path or a URL.

Default layout (the node protocol's XML)::

    <registry xmlns="urn:aeohub:node:1" programme="EU-AEO" count="2">
      <operator>
        <trader_id_scheme>EORI</trader_id_scheme><trader_id>DE123</trader_id>
        <address><street/><city/>...</address>
        <categories><category code="AEOS" status="valid" since="2019-01-01"/></categories>
        <identifiers><identifier scheme="MID" linked="true">DEACME12HAM</identifier></identifiers>
        ...
      </operator>
    </registry>

``namespace``, ``record_element`` and ``elements`` (canonical field -> element name,
looked up anywhere inside the record element) adapt it to other layouts.

The document is parsed as a stream with defusedxml's ``iterparse``, each record element
cleared once read, so memory stays flat. A DTD is refused outright: that shuts out
entity expansion ("billion laughs") and external entities (XXE) before any is resolved.
Batches carry state ``{"offset": records_done}`` like the CSV connector; a record with
format problems (a date in no configured format, ...) is carried with ``problems``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from typing import Any

import defusedxml
import defusedxml.ElementTree as DET
from marshmallow import fields

from connectors.base import (
    Batch,
    CanonicalRecord,
    CategoryEntry,
    CheckResult,
    Connector,
    ConnectorError,
    Discovery,
    FormatError,
    IdentifierEntry,
    ProgrammeInfo,
)
from connectors.files import (
    FieldMapping,
    FileSourceConfig,
    check_failure,
    open_binary,
    snapshot_identity,
    source_label,
)
from connectors.formats import (
    DATE_FIELDS,
    DateParser,
    as_bool,
    blank_to_none,
    fingerprint_bytes,
)

__all__ = ["DEFAULT_NAMESPACE", "XmlSnapshotConfig", "XmlSnapshotConnector"]

DEFAULT_NAMESPACE = "urn:aeohub:node:1"

_SCALARS = (
    "programme", "authorisation_number", "trader_id_scheme", "trader_id", "legal_name",
    "street", "city", "postcode", "region", "country", "status", "issuing_authority",
    "changed_at",
)


class XmlSnapshotConfig(FileSourceConfig):
    """Configuration of an ``xml_snapshot`` connection."""

    namespace = fields.String(
        load_default=DEFAULT_NAMESPACE, allow_none=True,
        metadata={"description": "XML namespace of the elements (empty: none)"},
    )
    record_element = fields.String(
        load_default="operator",
        metadata={"description": "Name of the element holding one operator"},
    )
    elements = FieldMapping(
        metadata={"description": "canonical field -> element name (null: do not read)"},
    )


class XmlSnapshotConnector(Connector):
    """Reads an XML snapshot of a registry from a path or URL."""

    name = "xml_snapshot"
    title = "XML file (path or URL)"
    config_schema = XmlSnapshotConfig

    def _tag(self, local: str) -> str:
        ns = self.config["namespace"]
        return f"{{{ns}}}{local}" if ns else local

    def _record(
        self, elem: ET.Element, index: int, root_programme: str | None, dates: DateParser
    ) -> CanonicalRecord:
        position = f"{self.config['record_element']} {index}"
        problems: list[str] = []
        mapping: Mapping[str, str | None] = self.config["elements"]

        def find(fld: str) -> ET.Element | None:
            name = mapping.get(fld, fld)
            if name is None:
                return None
            return elem.find(f".//{self._tag(name)}")

        def text(fld: str) -> str | None:
            found = find(fld)
            return None if found is None else blank_to_none("".join(found.itertext()))

        values: dict[str, Any] = {fld: text(fld) for fld in _SCALARS}
        for fld in DATE_FIELDS:
            values[fld] = dates(text(fld), fld, position, problems)
        values["programme"] = values["programme"] or root_programme or self.config["programme"]
        values["trader_id_scheme"] = values["trader_id_scheme"] or self.config["trader_id_scheme"]

        categories: list[CategoryEntry] = []
        container = find("categories")
        if container is not None:
            for cat in container.iter(self._tag("category")):
                code = blank_to_none(cat.get("code"))
                categories.append(CategoryEntry(
                    code=code,
                    status=blank_to_none(cat.get("status")),
                    since=dates(cat.get("since"), f"category {code} since", position, problems),
                ))
        identifiers: list[IdentifierEntry] = []
        container = find("identifiers")
        if container is not None:
            for ident in container.iter(self._tag("identifier")):
                linked = as_bool(ident.get("linked"))
                if linked is not None and not isinstance(linked, bool):
                    problems.append(f"{position}: identifier linked={linked!r} is not a boolean")
                identifiers.append(IdentifierEntry(
                    scheme=blank_to_none(ident.get("scheme")),
                    value=blank_to_none("".join(ident.itertext())),
                    linked=linked is True,
                ))
        return CanonicalRecord(
            **values,
            categories=tuple(categories),
            identifiers=tuple(identifiers),
            consent_share=as_bool(text("consent_share")),
            consent_publish=as_bool(text("consent_publish")),
            fingerprint=fingerprint_bytes(ET.tostring(elem)),
            position=position,
            problems=tuple(problems),
        )

    def _elements(self, stream: Any) -> Iterator[tuple[str, ET.Element]]:
        """(event, element) from a safe iterparse, errors turned into FormatError."""
        label = source_label(self.config)
        try:
            yield from DET.iterparse(
                stream, events=("start", "end"), forbid_dtd=True, forbid_entities=True,
                forbid_external=True,
            )
        except defusedxml.DTDForbidden as exc:
            raise FormatError(
                f"{label}: the XML declares a DTD, which is refused (it could expand entities "
                "or fetch external files); publish the registry without a DOCTYPE"
            ) from exc
        except defusedxml.DefusedXmlException as exc:
            raise FormatError(f"{label}: unsafe XML refused ({type(exc).__name__})") from exc
        except ET.ParseError as exc:
            raise FormatError(f"{label}: XML is not well-formed ({exc})") from exc

    def read(self, state: Mapping[str, Any] | None = None) -> Iterator[Batch]:
        """Stream the records in batches; resume by skipping ``state["offset"]`` records."""
        offset = int((state or {}).get("offset") or 0)
        size: int = self.config["batch_size"]
        dates = DateParser(self.config["date_formats"])
        record_tag = self._tag(self.config["record_element"])
        label = source_label(self.config)
        with open_binary(self.config, self.context, accept="application/xml") as raw:
            done = 0
            pending: list[CanonicalRecord] = []
            root_programme: str | None = None
            declared: str | None = None
            first_child: str | None = None
            open_elements: list[ET.Element] = []
            for event, elem in self._elements(raw):
                if event == "start":
                    open_elements.append(elem)
                    if len(open_elements) == 1:
                        root_programme = blank_to_none(elem.get("programme"))
                        declared = elem.get("count")
                    elif len(open_elements) == 2 and first_child is None:
                        first_child = elem.tag
                    continue
                open_elements.pop()
                if elem.tag != record_tag:
                    continue
                done += 1
                if done > offset:
                    pending.append(self._record(elem, done, root_programme, dates))
                # Drop the finished record from its parent so memory stays flat.
                elem.clear()
                if open_elements:
                    open_elements[-1].remove(elem)
                if len(pending) >= size:
                    yield Batch(records=tuple(pending), state={"offset": done})
                    pending = []
            if done == 0 and first_child is not None:
                raise FormatError(
                    f"{label}: no <{self.config['record_element']}> elements in namespace "
                    f"{self.config['namespace'] or '(none)'}; the first element inside the root "
                    f"is {first_child}; check namespace and record_element"
                )
            if declared is not None and declared.strip().isdigit() and int(declared) != done:
                raise FormatError(
                    f"{label}: the root declares count={declared} but holds {done} "
                    f"<{self.config['record_element']}> elements (truncated?)"
                )
            yield Batch(records=tuple(pending), state={"offset": None}, complete=True)

    def check(self) -> CheckResult:
        """Open the source and parse up to the first record."""
        record_tag = self._tag(self.config["record_element"])
        try:
            with open_binary(self.config, self.context, accept="application/xml") as raw:
                root_tag = None
                for event, elem in self._elements(raw):
                    root_tag = root_tag or elem.tag
                    if event == "end" and elem.tag == record_tag:
                        break
                else:
                    if root_tag is None:
                        raise FormatError(f"{source_label(self.config)} holds no XML element")
        except ConnectorError as exc:
            return check_failure(exc)
        return CheckResult(
            reachable=True,
            authenticated=True if self.config["url"] and self.config["token"] else None,
            format_ok=True, details={"root": root_tag},
        )

    def discover(self) -> Discovery:
        """An XML file is a full snapshot; the programme is the configured one."""
        programmes = [ProgrammeInfo(self.config["programme"])] if self.config["programme"] else []
        return Discovery(programmes=programmes, incremental=False,
                         snapshot_id=snapshot_identity(self.config, self.context))
