"""``GET $metadata``: a CSDL document generated from the schema.

It declares what a client can rely on: entity types with their keys, properties (Edm types,
string lengths), lookup navigation properties and ``_x_value`` properties, alternate keys
(``OData.Community.Keys.V1.AlternateKeys``), change tracking support per entity set, and the
bound actions. Much smaller than the real document, which also lists every system table.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import cache

from emulators.dataverse.actions import BOUND_ACTIONS
from emulators.dataverse.records import EDM_TYPES
from emulators.dataverse.schema import BY_SET, TABLES, Table

EDMX = "http://docs.oasis-open.org/odata/ns/edmx"
EDM = "http://docs.oasis-open.org/odata/ns/edm"
NAMESPACE = "Microsoft.Dynamics.CRM"


def _entity_type(schema: ET.Element, table: Table) -> None:
    entity = ET.SubElement(schema, "EntityType", Name=table.logical_name)
    key = ET.SubElement(entity, "Key")
    ET.SubElement(key, "PropertyRef", Name=table.primary_key)
    for column in table.columns:
        attrs = {"Name": column.prop, "Type": EDM_TYPES[column.kind]}
        if column.max_length is not None:
            attrs["MaxLength"] = str(column.max_length)
        ET.SubElement(entity, "Property", attrs)
        if column.target is not None:
            ET.SubElement(entity, "NavigationProperty", Name=column.name,
                          Type=f"{NAMESPACE}.{BY_SET[column.target].logical_name}")
    if table.alternate_keys:
        note = ET.SubElement(entity, "Annotation", Term="OData.Community.Keys.V1.AlternateKeys")
        keys = ET.SubElement(note, "Collection")
        for alternate in table.alternate_keys:
            record = ET.SubElement(keys, "Record", Type="OData.Community.Keys.V1.AlternateKey")
            value = ET.SubElement(record, "PropertyValue", Property="Key")
            parts = ET.SubElement(value, "Collection")
            for name in alternate:
                column = table.by_name[name]
                ref = ET.SubElement(parts, "Record", Type="OData.Community.Keys.V1.PropertyRef")
                ET.SubElement(ref, "PropertyValue", Property="Alias", String=column.prop)
                ET.SubElement(ref, "PropertyValue", Property="Name", PropertyPath=column.prop)


@cache
def metadata_document() -> bytes:
    root = ET.Element(f"{{{EDMX}}}Edmx", Version="4.0")
    services = ET.SubElement(root, f"{{{EDMX}}}DataServices")
    schema = ET.SubElement(services, f"{{{EDM}}}Schema", Namespace=NAMESPACE, Alias="mscrm")
    for table in TABLES:
        _entity_type(schema, table)
    for entity_set, name in BOUND_ACTIONS:
        action = ET.SubElement(schema, "Action", Name=name, IsBound="true")
        ET.SubElement(action, "Parameter", Name="entity", Nullable="false",
                      Type=f"{NAMESPACE}.{BY_SET[entity_set].logical_name}")
        ET.SubElement(action, "ReturnType", Type="Collection(mscrm.crmbaseentity)")
    container = ET.SubElement(schema, "EntityContainer", Name="System")
    for table in TABLES:
        element = ET.SubElement(container, "EntitySet", Name=table.entity_set,
                                EntityType=f"{NAMESPACE}.{table.logical_name}")
        note = ET.SubElement(element, "Annotation", Term="Org.OData.Capabilities.V1.ChangeTracking")
        record = ET.SubElement(note, "Record")
        ET.SubElement(record, "PropertyValue", Property="Supported", Bool="true")
    ET.register_namespace("edmx", EDMX)
    ET.register_namespace("", EDM)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
