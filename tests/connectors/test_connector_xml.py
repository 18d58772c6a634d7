"""The xml_snapshot connector: layout, mapping, namespace, resume, and hostile XML."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from connectors.base import AccessDenied, Batch, ConnectorContext, FormatError
from connectors.xml_snapshot import XmlSnapshotConnector
from tests.connectors.nodeserver import TOKEN, NodeServer, make_record, xml_text


def write(context: ConnectorContext, name: str, data: str) -> Path:
    assert context.import_dir is not None
    path = context.import_dir / name
    path.write_text(data, encoding="utf-8")
    return path


def read(conn: XmlSnapshotConnector, state: dict[str, Any] | None = None) -> list[Batch]:
    return list(conn.read(state))


def xml_connector(context: ConnectorContext, path: Path, **extra: Any) -> XmlSnapshotConnector:
    return XmlSnapshotConnector({"path": str(path), **extra}, context)


def test_reads_the_node_protocol_xml(context: ConnectorContext) -> None:
    path = write(context, "eu.xml", xml_text([make_record(i) for i in range(5)]))
    batches = read(xml_connector(context, path, batch_size=2))
    assert [len(b.records) for b in batches] == [2, 2, 1]
    assert [b.state for b in batches] == [{"offset": 2}, {"offset": 4}, {"offset": None}]
    assert batches[-1].complete
    rec = batches[0].records[0]
    assert (rec.programme, rec.trader_id_scheme, rec.trader_id) == ("EU-AEO", "EORI", "DE100000")
    assert (rec.street, rec.city, rec.postcode, rec.country) == (
        "0 Hafenstraße", "Hamburg", "20457", "DE")
    assert [(c.code, c.status, c.since) for c in rec.categories] == [
        ("AEOC", "valid", "2019-03-01"), ("AEOS", "suspended", "2019-03-01")]
    assert [(i.scheme, i.value, i.linked) for i in rec.identifiers] == [
        ("MID", "DEMULLOG0HAM", True)]
    assert (rec.consent_share, rec.consent_publish) == (True, True)
    assert rec.position == "operator 1"
    assert rec.problems == ()
    assert len({r.fingerprint for b in batches for r in b.records}) == 5


def test_element_mapping_namespace_and_dates(context: ConnectorContext) -> None:
    data = """<?xml version="1.0"?>
<x:Verzeichnis xmlns:x="urn:example:zoll">
  <x:Beteiligter>
    <x:EORI>DE123456789012345</x:EORI><x:Name>Hafen AG</x:Name><x:Stand>valid</x:Stand>
    <x:Bewilligt>01.02.2020</x:Bewilligt>
  </x:Beteiligter>
  <x:Beteiligter>
    <x:EORI>DE2</x:EORI><x:Name>Zweite GmbH</x:Name><x:Stand>revoked</x:Stand>
    <x:Bewilligt>gestern</x:Bewilligt>
  </x:Beteiligter>
</x:Verzeichnis>"""
    path = write(context, "de.xml", data)
    conn = xml_connector(
        context, path, namespace="urn:example:zoll", record_element="Beteiligter",
        programme="EU-AEO", trader_id_scheme="EORI", date_formats=["%d.%m.%Y"],
        elements={"trader_id": "EORI", "legal_name": "Name", "status": "Stand",
                  "authorised_on": "Bewilligt"},
    )
    first, second = [r for b in read(conn) for r in b.records]
    assert (first.programme, first.trader_id, first.legal_name, first.status) == (
        "EU-AEO", "DE123456789012345", "Hafen AG", "valid")
    assert first.authorised_on == "2020-02-01"
    assert second.problems == (
        "Beteiligter 2: authorised_on 'gestern' matches none of the date formats %d.%m.%Y",)


def test_no_namespace(context: ConnectorContext) -> None:
    path = write(context, "plain.xml", xml_text([make_record(1)], namespace=None))
    batches = read(xml_connector(context, path, namespace=""))
    assert batches[0].records[0].trader_id == "DE100001"


def test_wrong_namespace_is_explained(context: ConnectorContext) -> None:
    path = write(context, "eu.xml", xml_text([make_record(1)]))
    with pytest.raises(FormatError, match="no <operator> elements in namespace urn:other"):
        read(xml_connector(context, path, namespace="urn:other"))


def test_resume_from_offset(context: ConnectorContext) -> None:
    path = write(context, "eu.xml", xml_text([make_record(i) for i in range(7)]))
    conn = xml_connector(context, path, batch_size=3)
    feed = conn.read(None)
    assert isinstance(feed, Generator)
    first = next(feed)
    feed.close()
    ids = [r.trader_id for b in [first, *read(conn, first.state)] for r in b.records]
    assert ids == [f"DE{100000 + i}" for i in range(7)]


def test_count_mismatch_means_truncated(context: ConnectorContext) -> None:
    path = write(context, "eu.xml", xml_text([make_record(1)], count=3))
    with pytest.raises(FormatError, match="declares count=3 but holds 1"):
        read(xml_connector(context, path))


def test_cut_off_document_is_a_format_error(context: ConnectorContext) -> None:
    text = xml_text([make_record(i) for i in range(3)])
    path = write(context, "cut.xml", text[: len(text) * 2 // 3])
    with pytest.raises(FormatError, match="not well-formed"):
        read(xml_connector(context, path))


def test_billion_laughs_is_refused(context: ConnectorContext) -> None:
    lol = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<registry xmlns="urn:aeohub:node:1"><operator><legal_name>&lol4;</legal_name></operator>
</registry>"""
    path = write(context, "lol.xml", lol)
    with pytest.raises(FormatError, match="declares a DTD"):
        read(xml_connector(context, path))
    result = xml_connector(context, path).check()
    assert result.format_ok is False


def test_external_entity_never_reads_a_local_file(
    context: ConnectorContext, tmp_path: Path
) -> None:
    secret = tmp_path / "shadow.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    xxe = f"""<?xml version="1.0"?>
<!DOCTYPE registry [<!ENTITY xxe SYSTEM "file://{secret}">]>
<registry xmlns="urn:aeohub:node:1"><operator><trader_id>DE1</trader_id>
<legal_name>&xxe;</legal_name><status>valid</status></operator></registry>"""
    path = write(context, "xxe.xml", xxe)
    with pytest.raises(FormatError) as excinfo:
        read(xml_connector(context, path))
    assert "TOP-SECRET-CONTENT" not in str(excinfo.value)
    assert "DTD" in str(excinfo.value)


def test_external_entity_without_dtd_subset_is_refused(context: ConnectorContext) -> None:
    data = """<?xml version="1.0"?>
<!DOCTYPE registry SYSTEM "http://127.0.0.1:9/evil.dtd">
<registry xmlns="urn:aeohub:node:1"/>"""
    path = write(context, "ext.xml", data)
    with pytest.raises(FormatError, match="DTD"):
        read(xml_connector(context, path))


def test_path_outside_import_dir(context: ConnectorContext, tmp_path: Path) -> None:
    outside = tmp_path / "eu.xml"
    outside.write_text(xml_text([make_record(1)]))
    with pytest.raises(AccessDenied):
        read(xml_connector(context, outside))


def test_reads_from_url(node: NodeServer, context: ConnectorContext) -> None:
    node.files["eu.xml"] = (xml_text([make_record(i) for i in range(3)]).encode(),
                            "application/xml")
    conn = XmlSnapshotConnector({"url": node.url + "/files/eu.xml", "token": TOKEN}, context)
    assert [r.trader_id for b in read(conn) for r in b.records] == [
        "DE100000", "DE100001", "DE100002"]
    assert conn.check().ok
