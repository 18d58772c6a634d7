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
format problems (a date in no configured format, elements nested more than
`MAX_RECORD_DEPTH` levels deep, ...) is carried with ``problems``. Configured element paths
are compiled when the config is loaded, so a malformed one is a configuration error.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from typing import Any

import defusedxml
import defusedxml.ElementTree as DET
from marshmallow import ValidationError, fields, validates_schema

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
    fingerprint_json,
    fingerprint_text,
)
from connectors.mapping import CATEGORY_TEXT, Unread, ValueMapper, report_unread, unread_state

__all__ = ["DEFAULT_NAMESPACE", "XmlSnapshotConfig", "XmlSnapshotConnector", "element_path",
           "path_problem"]

DEFAULT_NAMESPACE = "urn:aeohub:node:1"

_SCALARS = (
    "programme", "authorisation_number", "trader_id_scheme", "trader_id", "legal_name",
    "street", "city", "postcode", "region", "country", "status", "issuing_authority",
    "changed_at",
)


#: Changes whenever the parse of a record changes, so that stored fingerprints stop matching.
_FINGERPRINT_VERSION = "xml-2"

#: Deepest element nesting inside a record that is read; a record nested deeper is carried
#: with a problem (serialising it, or walking it for unread data, would recurse too deep).
MAX_RECORD_DEPTH = 100


def _local(tag: Any) -> str:
    """An element's name without its namespace."""
    return str(tag).rpartition("}")[2]


def _deeper_than(record: ET.Element, limit: int) -> bool:
    """Whether ``record`` holds elements more than ``limit`` levels below it (looked at
    level by level, without recursion)."""
    level = list(record)
    for _ in range(limit):
        if not level:
            return False
        level = [child for node in level for child in node]
    return bool(level)


def _whole(container: ET.Element) -> list[Any]:
    """What reading a container whole uses: its elements and all their attributes."""
    return [item for node in container.iter() for item in (node, (node, "*"))]


def _note_unread(record: ET.Element, used: set[Any], unread: Unread) -> None:
    """Tell ``unread`` the elements and attributes of ``record`` that hold data and that
    no configured path read, by their paths relative to the record."""

    def walk(node: ET.Element, prefix: str) -> None:
        for name, value in node.attrib.items():
            if value.strip() and (node, name) not in used and (node, "*") not in used:
                unread.see_name(f"{prefix}@{_local(name)}")
        if node is not record and node not in used and (node.text or "").strip():
            unread.see_name(prefix.rstrip("/"))
        for child in node:
            walk(child, f"{prefix}{_local(child.tag)}/")

    walk(record, "")


def element_path(path: str, namespace: str | None) -> tuple[str | None, str | None]:
    """(ElementTree path of the elements, attribute name) of a configured path.

    ``name`` is looked up anywhere inside the record (``.//name``); a path with a
    slash (``address/city``) is relative to the record element; a last step
    ``@attr`` reads an attribute (``@id`` of the record itself, ``address/@city``).
    Steps may carry ElementTree predicates (``name[@lang='en']``).
    """
    attribute = None
    steps = [step for step in path.strip().split("/") if step]
    if steps and steps[-1].startswith("@"):
        attribute = steps.pop()[1:]
    if not steps:
        return None, attribute
    qualified = []
    for step in steps:
        tag, bracket, predicate = step.partition("[")
        name = f"{{{namespace}}}{tag}" if namespace and tag not in (".", "..", "*") else tag
        qualified.append(f"{name}{bracket}{predicate}")
    prefix = "" if "/" in path.strip().rstrip("/").removesuffix(f"@{attribute}").rstrip("/") \
        else ".//"
    return prefix + "/".join(qualified), attribute


def path_problem(path: str, namespace: str | None) -> str | None:
    """Why ``path`` is no element path ElementTree can follow (None when it is one).

    ElementTree compiles a path only when it is first used, and a malformed predicate
    then fails with a bare TypeError or KeyError; compiling it here turns that into a
    configuration error."""
    where, _attribute = element_path(path, namespace)
    if where is None:
        return None
    try:
        ET.Element("record").findall(where)
    except (SyntaxError, TypeError, KeyError, ValueError, IndexError, StopIteration) as exc:
        detail = str(exc) if isinstance(exc, SyntaxError) else "malformed expression"
        return (f"{path!r} is not a usable element path ({detail}); write a name, "
                "a/b/c, an @attribute last, or a predicate such as name[@lang='en']")
    return None


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

    @validates_schema
    def _paths(self, data: Mapping[str, Any], **_kwargs: Any) -> None:
        """Every configured element path compiles (see `path_problem`)."""
        namespace = data.get("namespace")
        errors: dict[str, Any] = {}
        for setting in ("elements", "category_columns", "identifier_columns"):
            for name, path in (data.get(setting) or {}).items():
                problem = path and path_problem(path, namespace)
                if problem:
                    errors.setdefault(setting, {})[name] = [problem]
        tier = data.get("tier_column")
        problem = tier and path_problem(tier, namespace)
        if problem:
            errors["tier_column"] = [problem]
        if errors:
            raise ValidationError(errors)


class XmlSnapshotConnector(Connector):
    """Reads an XML snapshot of a registry from a path or URL."""

    name = "xml_snapshot"
    title = "XML file (path or URL)"
    config_schema = XmlSnapshotConfig

    def __init__(self, config: Mapping[str, Any], context: Any = None) -> None:
        super().__init__(config, context)
        self.mapper = ValueMapper(self.config)
        self._salt = fingerprint_json([
            _FINGERPRINT_VERSION, self.config["namespace"], self.config["record_element"],
            sorted(self.config["elements"].items(), key=lambda kv: kv[0]),
            self.config["programme"], self.config["trader_id_scheme"],
            list(self.config["date_formats"]), self.mapper.salt]) + "\x1e"

    def _tag(self, local: str) -> str:
        ns = self.config["namespace"]
        return f"{{{ns}}}{local}" if ns else local

    def _path(self, path: str) -> tuple[str | None, str | None]:
        """(ElementTree path of the elements, attribute name) of a configured path."""
        return element_path(path, self.config["namespace"])

    def _values(self, elem: ET.Element, path: str, used: set[Any]) -> list[str | None]:
        """Every value ``path`` finds in the record, in document order; what it reads is
        added to ``used`` (elements with their descendants, (element, attribute) pairs)."""
        where, attribute = self._path(path)
        found = [elem] if where is None else elem.findall(where)
        out: list[str | None] = []
        for node in found:
            if attribute is not None:
                if attribute in node.attrib:
                    used.add((node, attribute))
                    out.append(blank_to_none(node.get(attribute)))
            else:
                used.update(node.iter())
                out.append(blank_to_none("".join(node.itertext())))
        return out

    def _record(
        self, elem: ET.Element, index: int, root_programme: str | None, dates: DateParser,
        unread: Unread | None = None,
    ) -> CanonicalRecord:
        position = f"{self.config['record_element']} {index}"
        problems: list[str] = []
        too_deep = _deeper_than(elem, MAX_RECORD_DEPTH)
        if too_deep:
            problems.append(f"{position}: elements nested more than {MAX_RECORD_DEPTH} levels "
                            "deep; the record is refused")
        mapping: Mapping[str, str | None] = self.config["elements"]
        mapper = self.mapper
        used: set[Any] = set()

        def texts(fld: str) -> list[str | None]:
            path = mapping.get(fld, fld)
            return [] if path is None else self._values(elem, path, used)

        def text(fld: str) -> str | None:
            return next((v for v in texts(fld) if v is not None), None)

        values: dict[str, Any] = {fld: text(fld) for fld in _SCALARS}
        for fld in DATE_FIELDS:
            values[fld] = dates(text(fld), fld, position, problems)
        values["programme"] = values["programme"] or root_programme
        if not mapper.active:
            values["programme"] = values["programme"] or self.config["programme"]
            values["trader_id_scheme"] = (values["trader_id_scheme"]
                                          or self.config["trader_id_scheme"])

        extra: dict[str, list[str | None]] = {
            name: self._values(elem, name, used) for name in mapper.source_names}
        categories: list[CategoryEntry] = []
        if mapper.codes:
            extra[CATEGORY_TEXT] = texts("categories")
        else:
            path = mapping.get("categories", "categories")
            containers = [] if path is None else elem.findall(self._path(path)[0] or ".")
            for container in containers:
                used.update(_whole(container))
                for cat in container.iter(self._tag("category")):
                    code = blank_to_none(cat.get("code"))
                    categories.append(CategoryEntry(
                        code=code,
                        status=blank_to_none(cat.get("status")),
                        since=dates(cat.get("since"), f"category {code} since", position,
                                    problems),
                        tier=blank_to_none(cat.get("tier")),
                    ))
        identifiers: list[IdentifierEntry] = []
        path = mapping.get("identifiers", "identifiers")
        for container in [] if path is None else elem.findall(self._path(path)[0] or "."):
            used.update(_whole(container))
            for ident in container.iter(self._tag("identifier")):
                linked = as_bool(ident.get("linked"))
                if linked is not None and not isinstance(linked, bool):
                    problems.append(f"{position}: identifier linked={linked!r} is not a boolean")
                identifiers.append(IdentifierEntry(
                    scheme=blank_to_none(ident.get("scheme")),
                    value=blank_to_none("".join(ident.itertext())),
                    linked=linked is True,
                ))
        record = CanonicalRecord(
            **values,
            categories=tuple(categories),
            identifiers=tuple(identifiers),
            consent_share=as_bool(text("consent_share")),
            consent_publish=as_bool(text("consent_publish")),
            fingerprint=fingerprint_text(self._salt + ("".join(elem.itertext()) if too_deep
                                                       else ET.tostring(elem, encoding="unicode"))),
            position=position,
            problems=tuple(problems),
        )
        if unread is not None and not too_deep:
            _note_unread(elem, used, unread)
        return mapper.apply(record, extra) if mapper.active else record

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
            unread = Unread(())
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
                    pending.append(self._record(elem, done, root_programme, dates, unread))
                # Drop the finished record from its parent so memory stays flat.
                elem.clear()
                if open_elements:
                    open_elements[-1].remove(elem)
                if len(pending) >= size:
                    yield Batch(records=tuple(pending),
                                state={"offset": done, **unread_state(unread)})
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
            report_unread(self.log, self.name, unread)
            yield Batch(records=tuple(pending), state={"offset": None, **unread_state(unread)},
                        complete=True)

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
