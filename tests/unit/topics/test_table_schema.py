"""CSDL ``$metadata`` -> per-table JSON Schemas: types, nullability and keys, on documents shaped
like each system's (Dataverse: a base type, no Nullable facets, ``_x_value`` lookups; Finance: an
enum type, ``Nullable="false"`` keys, entity type and set named differently)."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from emulators.dataverse.metadata import metadata_document
from emulators.finance.entities import ENTITIES
from emulators.finance.metadata import csdl
from streams.maps import default_registry
from topics import Command, catalog
from topics.schema import TableSchema, cdc_key_schema, cdc_value_schema, topic_schemas
from topics.table_schema import MetadataError, parse_csdl, row_schema

pytestmark = pytest.mark.unit

DATAVERSE = """<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">
 <edmx:DataServices>
  <Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" xmlns="http://docs.oasis-open.org/odata/ns/edm">
   <EntityType Name="crmbaseentity" Abstract="true"/>
   <EntityType Name="msdyn_project" BaseType="mscrm.crmbaseentity">
    <Key><PropertyRef Name="msdyn_projectid"/></Key>
    <Property Name="msdyn_projectid" Type="Edm.Guid"/>
    <Property Name="msdyn_subject" Type="Edm.String" Unicode="false" MaxLength="200"/>
    <Property Name="_msdyn_customer_value" Type="Edm.Guid"/>
    <Property Name="statecode" Type="Edm.Int32"/>
    <Property Name="msdyn_scheduledstart" Type="Edm.DateTimeOffset"/>
    <Property Name="msdyn_duedate" Type="Edm.Date"/>
    <Property Name="msdyn_actualcost" Type="Edm.Decimal" Scale="Variable"/>
    <Property Name="msdyn_isfinal" Type="Edm.Boolean"/>
    <Property Name="versionnumber" Type="Edm.Int64"/>
    <NavigationProperty Name="msdyn_customer" Type="mscrm.account" Nullable="false"/>
   </EntityType>
   <EntityContainer Name="System">
    <EntitySet Name="msdyn_projects" EntityType="Microsoft.Dynamics.CRM.msdyn_project"/>
   </EntityContainer>
  </Schema>
 </edmx:DataServices>
</edmx:Edmx>"""

FINANCE = """<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">
 <edmx:DataServices>
  <Schema Namespace="Microsoft.Dynamics.DataEntities" xmlns="http://docs.oasis-open.org/odata/ns/edm">
   <EnumType Name="NoYes"><Member Name="No" Value="0"/><Member Name="Yes" Value="1"/></EnumType>
   <EntityType Name="ProjectV2">
    <Key><PropertyRef Name="dataAreaId"/><PropertyRef Name="ProjectID"/></Key>
    <Property Name="dataAreaId" Type="Edm.String" Nullable="false" MaxLength="4"/>
    <Property Name="ProjectID" Type="Edm.String" Nullable="false" MaxLength="20"/>
    <Property Name="ProjectName" Type="Edm.String" MaxLength="60"/>
    <Property Name="IsActive" Type="Microsoft.Dynamics.DataEntities.NoYes" Nullable="false"/>
    <Property Name="Blocked" Type="Microsoft.Dynamics.DataEntities.NoYes"/>
    <Property Name="Amount" Type="Edm.Decimal" Nullable="false" Precision="32" Scale="6"/>
    <Property Name="Tags" Type="Collection(Edm.String)"/>
    <Property Name="RecId" Type="Edm.Int64" Nullable="false"/>
   </EntityType>
   <EntityContainer Name="Resources">
    <EntitySet Name="ProjectsV2" EntityType="Microsoft.Dynamics.DataEntities.ProjectV2"/>
   </EntityContainer>
  </Schema>
 </edmx:DataServices>
</edmx:Edmx>"""


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def props(document: str, entity_set: str) -> dict[str, Any]:
    shape = parse_csdl(document)[entity_set]
    return row_schema(shape, entity_set)["properties"]  # type: ignore[no-any-return]


def test_dataverse_types_follow_the_edm_types() -> None:
    p = props(DATAVERSE, "msdyn_projects")
    assert p["msdyn_projectid"]["type"] == "string" and p["msdyn_projectid"]["format"] == "uuid"
    assert p["_msdyn_customer_value"]["format"] == "uuid"
    assert p["msdyn_subject"]["type"] == ["string", "null"] and p["msdyn_subject"]["maxLength"] == 200
    assert p["statecode"]["type"] == ["integer", "null"]
    assert p["versionnumber"]["type"] == ["integer", "null"]
    assert p["msdyn_actualcost"]["type"] == ["number", "null"]
    assert p["msdyn_actualcost"]["x-edm-type"] == "Edm.Decimal"
    assert p["msdyn_isfinal"]["type"] == ["boolean", "null"]
    assert p["msdyn_scheduledstart"]["format"] == "date-time"
    assert p["msdyn_duedate"]["format"] == "date"
    assert "msdyn_customer" not in p  # a navigation property is no column of the row


def test_dataverse_key_comes_through_the_base_type_and_is_never_null() -> None:
    shape = parse_csdl(DATAVERSE)["msdyn_projects"]
    assert shape.key == ("msdyn_projectid",)
    schema = row_schema(shape, "msdyn_projects")
    assert schema["required"] == ["msdyn_projectid"]
    assert schema["properties"]["msdyn_projectid"]["type"] == "string"  # no null for a key


def test_finance_keys_keep_their_declared_order_and_the_set_its_own_name() -> None:
    shapes = parse_csdl(FINANCE)
    assert list(shapes) == ["ProjectsV2"]  # the entity set, not the type "ProjectV2"
    assert shapes["ProjectsV2"].key == ("dataAreaId", "ProjectID")


def test_finance_nullability_enums_and_collections() -> None:
    p = props(FINANCE, "ProjectsV2")
    assert p["ProjectName"]["type"] == ["string", "null"] and p["ProjectName"]["maxLength"] == 60
    assert p["IsActive"]["type"] == "string" and p["IsActive"]["enum"] == ["No", "Yes"]
    assert p["Blocked"]["enum"] == ["No", "Yes", None]
    assert p["Amount"]["type"] == "number"  # Nullable="false": no null
    assert p["RecId"]["type"] == "integer"
    assert p["Tags"]["type"] == ["array", "null"] and p["Tags"]["items"] == {"type": "string"}


def test_a_row_validates_only_with_its_declared_columns_and_types() -> None:
    check = validator(row_schema(parse_csdl(FINANCE)["ProjectsV2"], "ProjectsV2"))
    good = {"dataAreaId": "usmf", "ProjectID": "P-1", "ProjectName": None, "IsActive": "Yes",
            "Amount": 12.5, "RecId": 5637144576}
    assert check.is_valid(good)
    assert not check.is_valid({**good, "Amount": "12.5"})  # a number, not a string
    assert not check.is_valid({**good, "IsActive": "Maybe"})  # not a member of NoYes
    assert not check.is_valid({**good, "Unknown": 1})  # a column the metadata does not declare
    assert not check.is_valid({**good, "dataAreaId": None})  # a key is never null
    assert not check.is_valid({k: v for k, v in good.items() if k != "ProjectID"})  # nor missing
    assert not check.is_valid({**good, "ProjectID": "P" * 21})  # MaxLength


def test_formats_are_checked() -> None:
    check = validator(row_schema(parse_csdl(DATAVERSE)["msdyn_projects"], "msdyn_projects"))
    pk = "00000000-0000-0000-0000-000000000001"
    assert check.is_valid({"msdyn_projectid": pk, "msdyn_duedate": "2026-01-31",
                           "msdyn_scheduledstart": "2026-01-31T12:00:00Z"})
    assert not check.is_valid({"msdyn_projectid": "not-a-guid"})
    assert not check.is_valid({"msdyn_projectid": pk, "msdyn_scheduledstart": "yesterday"})


def test_what_is_not_csdl_is_a_typed_error() -> None:
    with pytest.raises(MetadataError, match="not an XML document"):
        parse_csdl(b"<html><body>sign in")
    with pytest.raises(MetadataError, match="not a CSDL document"):
        parse_csdl("<feed/>")


# -- the CDC topics' schemas --------------------------------------------------------------------

FINANCE_TABLE = TableSchema("finance", "ProjectsV2", parse_csdl(FINANCE)["ProjectsV2"])
ROW = {"dataAreaId": "usmf", "ProjectID": "P-1", "IsActive": "Yes", "Amount": 1, "RecId": 1}
SOURCE = {"system": "finance", "table": "ProjectsV2", "version": "7", "ts_ms": 1}


def event(**fields: Any) -> dict[str, Any]:
    return {"before": None, "after": ROW, "op": "c", "ts_ms": 1, "source": SOURCE, **fields}


def test_cdc_value_schema_types_before_and_after_and_ties_them_to_op() -> None:
    check = validator(cdc_value_schema(FINANCE_TABLE))
    assert check.is_valid(event())
    assert check.is_valid(event(op="u", before=ROW))
    assert check.is_valid(event(op="d", before={"dataAreaId": "usmf", "ProjectID": "P-1"}, after=None))
    assert check.is_valid(None)  # the tombstone after a delete
    assert not check.is_valid(event(after={**ROW, "Amount": "1"}))
    assert not check.is_valid(event(op="d", before=ROW))  # a delete has no after image
    assert not check.is_valid(event(op="u", after=None))  # an update has one
    assert not check.is_valid(event(source={**SOURCE, "system": "dataverse"}))


def test_cdc_value_schema_offline_is_the_envelope_only() -> None:
    check = validator(cdc_value_schema(None))
    assert check.is_valid(event(after={"anything": [1, 2]}))
    assert check.is_valid(None)
    assert not check.is_valid(event(op="x"))


def test_cdc_key_schema_names_the_key_fields() -> None:
    schema = cdc_key_schema(FINANCE_TABLE)
    assert schema["x-key-fields"] == ["dataAreaId", "ProjectID"]
    assert "dataAreaId, ProjectID" in schema["properties"]["id"]["description"]
    assert "'|'" in schema["properties"]["id"]["description"]
    assert validator(schema).is_valid({"id": "usmf|P-1"})


def test_command_and_ack_topics_are_keyed_by_the_target_record_key_as_text() -> None:
    schemas = topic_schemas(catalog(cdc_tables=[("finance", "ProjectsV2")]),
                            {"finance.cdc.projectsv2": FINANCE_TABLE})
    for topic in ("sync.commands.finance", "sync.applied.dataverse"):
        key = schemas[topic]["key"]
        assert key["type"] == "string" and "record key" in key["description"]
        assert "not JSON" in key["description"] and "command_id" in key["description"]
    assert schemas["finance.cdc.projectsv2"]["value"]["$defs"]["Row"]["title"] == "finance ProjectsV2 row"
    assert schemas["sync.commands.finance"]["value"] == Command.model_json_schema()


def test_the_emulators_declare_every_table_the_built_in_maps_capture() -> None:
    shapes = {"dataverse": parse_csdl(metadata_document()), "finance": parse_csdl(csdl(ENTITIES))}
    for system, table in default_registry().cdc_tables():
        shape = shapes[system].get(table)
        assert shape is not None and shape.key, (system, table)
