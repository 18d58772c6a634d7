"""Value mappings (connectors.mapping) as the CSV and XML connectors apply them."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest

from connectors.base import CanonicalRecord, CategoryEntry, ConfigError, ConnectorContext
from connectors.csv_snapshot import CsvSnapshotConnector
from connectors.mapping import DERIVED_SCHEME, ValueMapper, unmapped_value
from connectors.xlsx_snapshot import XlsxSnapshotConnector
from connectors.xml_snapshot import XmlSnapshotConnector
from tests.connectors.examples import install
from tests.connectors.workbooks import HEADER, write_workbook


def records(connector: Any) -> tuple[list[CanonicalRecord], dict[str, Any]]:
    batches = list(connector.read(None))
    return [r for b in batches for r in b.records], batches[-1].state


def test_german_export_maps_its_own_words(context: ConnectorContext,
                                          caplog: pytest.LogCaptureFixture) -> None:
    assert context.import_dir is not None
    example = install("de_zoll_latin1", context.import_dir)
    with caplog.at_level(logging.WARNING, "connectors"):
        found, state = records(CsvSnapshotConnector(example["config"], context))
    first, second, third, fourth = found
    assert (first.trader_id, first.legal_name, first.street, first.country) == (
        "DE4711000000001", "Müller Spedition GmbH", "Hafenstraße 12", "DE")
    assert first.status == "valid" and first.consent_publish is True
    # a bare category takes the operator's own status and date
    assert first.categories == (CategoryEntry("AEOF", "valid", "2019-09-07"),)
    assert second.categories == (CategoryEntry("AEOC", "valid", "2020-01-15"),)
    assert second.consent_publish is False
    assert third.categories == (CategoryEntry("AEOS", "suspended", "2018-03-01"),)
    assert first.consent_share is None  # never inferred from publication
    assert [r.problems for r in (first, second, third)] == [(), (), ()]
    # a word that is not in its map is carried with a problem naming it and the map
    assert fourth.status == "vorläufig"
    assert len(fourth.problems) == 1
    assert "status 'vorläufig' is not in values.status" in fourth.problems[0]
    assert "'gültig'" in fourth.problems[0]
    assert unmapped_value(fourth.problems[0]) == ("status", "vorläufig")
    # the clerk's column holds data that no setting reads: reported, not dropped
    assert state["unread"] == ["Sachbearbeiter"]
    assert "Sachbearbeiter" in caplog.text


def test_map_lookup_ignores_case_and_whitespace() -> None:
    mapper = ValueMapper({"values": {"status": {"Gültig": "valid"}}})
    problems: list[str] = []
    assert mapper.value("status", "  GÜLTIG ", "line 2", problems) == "valid"
    assert problems == []


def test_eu_public_list_derives_a_marked_stable_key(context: ConnectorContext) -> None:
    assert context.import_dir is not None
    example = install("eu_public_list", context.import_dir)
    found, state = records(CsvSnapshotConnector(example["config"], context))
    assert len(found) == 3
    nordic = found[0]
    assert nordic.trader_id_scheme == DERIVED_SCHEME
    assert nordic.trader_id and len(nordic.trader_id) == 24
    assert nordic.status == "valid" and nordic.consent_publish is True
    assert nordic.consent_share is None
    assert nordic.categories == (CategoryEntry("AEOF", "valid", "2018-06-12"),)
    assert nordic.problems == ()
    assert len({r.trader_id for r in found}) == 3
    # the key depends on its fields only, spelled in any case or spacing
    again = ValueMapper({"key": ["legal_name", "country", "issuing_authority"]}).apply(
        CanonicalRecord(legal_name=" NORDIC  freight oy", country="fi",
                        issuing_authority="Finnish Customs"))
    assert again.trader_id == nordic.trader_id
    assert "unread" not in state


def test_a_derived_key_lacking_a_part_is_a_problem() -> None:
    mapper = ValueMapper({"key": ["legal_name", "country"]})
    record = mapper.apply(CanonicalRecord(legal_name="Acme", position="line 3"))
    assert record.trader_id is None
    assert record.problems == ("line 3: the derived key lacks country (key: legal_name, "
                               "country)",)


def test_one_column_per_category(context: ConnectorContext) -> None:
    assert context.import_dir is not None
    (context.import_dir / "cols.csv").write_text(
        "eori,name,status,since,c,s\n"
        "DE1,A,valid,2020-01-01,x,\n"
        "DE2,B,suspended,2021-01-01,X,ja\n"
        "DE3,C,valid,2022-01-01,no,\n", encoding="utf-8")
    found, _ = records(CsvSnapshotConnector({
        "path": "cols.csv", "programme": "EU-AEO", "trader_id_scheme": "EORI",
        "columns": {"trader_id": "eori", "legal_name": "name", "authorised_on": "since"},
        "category_columns": {"AEOC": "c", "AEOS": "s"},
    }, context))
    assert [r.categories for r in found] == [
        (CategoryEntry("AEOC", "valid", "2020-01-01"),),
        (CategoryEntry("AEOC", "suspended", "2021-01-01"),
         CategoryEntry("AEOS", "suspended", "2021-01-01")),
        (),
    ]


def test_entries_keep_their_own_status_through_the_status_map(
        context: ConnectorContext) -> None:
    assert context.import_dir is not None
    (context.import_dir / "e.csv").write_text(
        "trader_id,legal_name,status,categories,identifiers\n"
        "DE1,A,gültig,Sicherheit:ausgesetzt:2024-05-01,Rechtsträger:529900T8BM49AURSDO55\n",
        encoding="utf-8")
    found, _ = records(CsvSnapshotConnector({
        "path": "e.csv", "programme": "EU-AEO", "trader_id_scheme": "EORI",
        "values": {"status": {"gültig": "valid", "ausgesetzt": "suspended"},
                   "categories": {"Sicherheit": "AEOS"},
                   "identifier_scheme": {"Rechtsträger": "LEI"}},
    }, context))
    (record,) = found
    assert record.status == "valid"
    assert record.categories == (CategoryEntry("AEOS", "suspended", "2024-05-01"),)
    assert [(i.scheme, i.value) for i in record.identifiers] == [
        ("LEI", "529900T8BM49AURSDO55")]


def test_a_changed_mapping_changes_the_fingerprint(context: ConnectorContext) -> None:
    assert context.import_dir is not None
    example = install("de_zoll_latin1", context.import_dir)
    before, _ = records(CsvSnapshotConnector(example["config"], context))
    config = {**example["config"], "values": {**example["config"]["values"],
                                              "country": {"deutschland": "AT"}}}
    after, _ = records(CsvSnapshotConnector(config, context))
    assert before[0].fingerprint != after[0].fingerprint


def test_mapping_settings_are_validated(context: ConnectorContext, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        CsvSnapshotConnector({"path": "x.csv", "values": {"colour": {"a": "b"}},
                              "key": ["nickname"]}, context)
    assert set(info.value.fields) >= {"values.colour.key", "key.0"}


def test_xml_attributes_nested_paths_and_repeated_elements(context: ConnectorContext) -> None:
    assert context.import_dir is not None
    example = install("nl_registry", context.import_dir)
    found, state = records(XmlSnapshotConnector(example["config"], context))
    first, second, third = found
    assert (first.trader_id, first.legal_name, first.street, first.city, first.postcode,
            first.country) == ("NL812345678", "Havenbedrijf Noord B.V.", "Waalhaven 12",
                               "Rotterdam", "3089 JH", "NL")
    assert first.authorisation_number == "NLAEOF00012/19"
    assert first.categories == (CategoryEntry("AEOC", "valid", "2019-04-01"),
                                CategoryEntry("AEOS", "valid", "2019-04-01"))
    assert [(i.scheme, i.value) for i in first.identifiers] == [
        ("LEI", "529900T8BM49AURSDO55")]
    assert second.status == "suspended"
    assert second.categories == (CategoryEntry("AEOS", "suspended", "2021-07-15"),)
    assert all(r.problems == () for r in found)
    # the name's language attribute holds data nothing reads
    assert state["unread"] == ["Naam/@taal"]
    assert third.identifiers == ()


def test_xml_unmapped_value_and_unread_element(context: ConnectorContext) -> None:
    assert context.import_dir is not None
    (context.import_dir / "r.xml").write_text(
        '<r><op id="DE1" st="weg"><name>A</name><note>call back</note></op></r>',
        encoding="utf-8")
    found, state = records(XmlSnapshotConnector({
        "path": "r.xml", "namespace": "", "record_element": "op", "programme": "EU-AEO",
        "trader_id_scheme": "EORI",
        "elements": {"trader_id": "@id", "status": "@st", "legal_name": "name"},
        "values": {"status": {"gültig": "valid"}},
    }, context))
    (record,) = found
    assert record.problems == ("op 1: status 'weg' is not in values.status (it maps "
                               "'gültig')",)
    assert state["unread"] == ["note"]


CTPAT_TIERS = {"Tier I": "tier1", "Tier II": "tier2", "Stufe 3": "tier3"}


def test_tier_words_map_to_the_canonical_tier(context: ConnectorContext) -> None:
    # C-TPAT entries carry a tier as their fourth part; the administration's own words
    # go through values.tier like every other mapped field
    assert context.import_dir is not None
    (context.import_dir / "t.csv").write_text(
        "trader_id,legal_name,status,categories\n"
        "00000001,A,valid,importer:valid:2015-03-01: tier ii \n"
        "00000002,B,valid,importer:valid:2015-03-01:STUFE 3|customs_broker:valid:"
        "2016-01-01:Tier I\n"
        "00000003,C,valid,importer:valid:2015-03-01:Tier IV\n"
        "00000004,D,valid,importer:valid:2015-03-01\n", encoding="utf-8")
    found, _ = records(CsvSnapshotConnector({
        "path": "t.csv", "programme": "US-CTPAT", "trader_id_scheme": "US_CTPAT",
        "values": {"tier": CTPAT_TIERS}}, context))
    first, second, third, fourth = found
    assert first.categories == (CategoryEntry("importer", "valid", "2015-03-01", "tier2"),)
    assert second.categories == (
        CategoryEntry("importer", "valid", "2015-03-01", "tier3"),
        CategoryEntry("customs_broker", "valid", "2016-01-01", "tier1"))
    assert (first.problems, second.problems, fourth.problems) == ((), (), ())
    assert fourth.categories == (CategoryEntry("importer", "valid", "2015-03-01"),)
    (problem,) = third.problems
    assert problem == ("line 4: tier 'Tier IV' is not in values.tier (it maps 'stufe 3', "
                       "'tier i', 'tier ii')")
    assert unmapped_value(problem) == ("tier", "Tier IV")
    assert third.categories[0].tier == "Tier IV"  # carried as read, for the validator


def test_a_tier_column_for_categories_read_as_codes(context: ConnectorContext) -> None:
    assert context.import_dir is not None
    (context.import_dir / "c.csv").write_text(
        "id,name,status,since,types,level\n"
        "00000001,A,valid,2015-03-01,importer/customs_broker,Tier II\n"
        "00000002,B,valid,2016-03-01,importer,Stufe 9\n"
        "00000003,C,valid,2016-03-01,importer,\n", encoding="utf-8")
    found, state = records(CsvSnapshotConnector({
        "path": "c.csv", "programme": "US-CTPAT", "trader_id_scheme": "US_CTPAT",
        "columns": {"trader_id": "id", "legal_name": "name", "categories": "types",
                    "status_effective": "since"},
        "categories_format": "codes", "tier_column": "level",
        "values": {"tier": CTPAT_TIERS}}, context))
    first, second, third = found
    assert first.categories == (
        CategoryEntry("importer", "valid", "2015-03-01", "tier2"),
        CategoryEntry("customs_broker", "valid", "2015-03-01", "tier2"))
    # one problem for the record, not one per category
    assert second.problems == ("line 3: tier 'Stufe 9' is not in values.tier (it maps "
                               "'stufe 3', 'tier i', 'tier ii')",)
    assert third.categories == (CategoryEntry("importer", "valid", "2016-03-01"),)
    assert "unread" not in state
    with pytest.raises(ConfigError) as info:
        CsvSnapshotConnector({"path": "c.csv", "tier_column": "level"}, context)
    assert "tier_column" in info.value.fields


def test_xml_tier_attributes_through_the_tier_map(context: ConnectorContext) -> None:
    assert context.import_dir is not None
    (context.import_dir / "t.xml").write_text(
        '<r><op id="00000001"><name>A</name><st>valid</st><categories>'
        '<category code="importer" status="valid" since="2015-03-01" tier="Tier II"/>'
        '<category code="exporter" status="valid" since="2017-03-01" tier="Stufe 3"/>'
        '</categories></op>'
        '<op id="00000002"><name>B</name><st>valid</st><categories>'
        '<category code="importer" status="valid" since="2015-03-01" tier="Gold"/>'
        '</categories></op></r>', encoding="utf-8")
    found, _ = records(XmlSnapshotConnector({
        "path": "t.xml", "namespace": "", "record_element": "op", "programme": "US-CTPAT",
        "trader_id_scheme": "US_CTPAT",
        "elements": {"trader_id": "@id", "status": "st", "legal_name": "name"},
        "values": {"tier": CTPAT_TIERS},
    }, context))
    first, second = found
    assert first.categories == (CategoryEntry("importer", "valid", "2015-03-01", "tier2"),
                                CategoryEntry("exporter", "valid", "2017-03-01", "tier3"))
    assert first.problems == ()
    assert second.problems == ("op 2: tier 'Gold' is not in values.tier (it maps "
                               "'stufe 3', 'tier i', 'tier ii')",)


def test_excel_tier_column_through_the_tier_map(context: ConnectorContext) -> None:
    assert context.import_dir is not None
    write_workbook(context.import_dir / "t.xlsx", [
        (1, "A", "1 Main St", "Chicago", "Importer", dt.date(2015, 3, 1), "Valid",
         "Tier II"),
        (2, "B", "2 Main St", "Chicago", "Importer", dt.date(2016, 3, 1), "Valid", "Tier V"),
    ], header=(*HEADER[:7], "Tier"))
    found, _ = records(XlsxSnapshotConnector({
        "path": "t.xlsx", "sheet": "Register", "header_row": 3, "programme": "US-CTPAT",
        "trader_id_scheme": "US_CTPAT",
        "columns": {"trader_id": HEADER[0], "legal_name": HEADER[1], "street": HEADER[2],
                    "city": HEADER[3], "categories": HEADER[4], "authorised_on": HEADER[5],
                    "status": HEADER[6]},
        "categories_format": "codes", "tier_column": "Tier",
        "values": {"status": {"valid": "valid"}, "categories": {"importer": "importer"},
                   "tier": CTPAT_TIERS}}, context))
    first, second = found
    assert first.trader_id == "00000001"
    assert first.categories == (CategoryEntry("importer", "valid", "2015-03-01", "tier2"),)
    assert first.problems == ()
    assert second.problems == ("row 5: tier 'Tier V' is not in values.tier (it maps "
                               "'stufe 3', 'tier i', 'tier ii')",)
