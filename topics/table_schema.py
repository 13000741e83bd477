"""A source table's columns as JSON Schema, from the API's own ``$metadata`` (OData CSDL).

Both systems describe their tables in CSDL: Dataverse at ``/api/data/v9.2/$metadata``, Finance
at ``/data/$metadata``. Reading the configured API's document, rather than a list kept here,
gives a real deployment its real columns (custom columns included) and the emulators theirs.

- `parse_csdl` reads a document into `EntityShape` per entity set: key fields (in the order the
  document declares them, which is the order a Finance CDC key joins them), and each property's
  Edm type, nullability (CSDL's default is nullable) and ``MaxLength``. Base types
  (``BaseType``, Dataverse's ``crmbaseentity``) are followed; enum types (Finance's ``NoYes``
  and the like, serialised by member name) keep their members.
- `row_schema` turns a shape into the schema of a ``before``/``after`` image, as the sources
  write them (the row the API returns, annotations stripped): every declared column with its
  JSON type (OData JSON: Int64 and Decimal as numbers, dates and GUIDs as strings with a
  ``format``), ``null`` allowed where the column is nullable, the key fields required (even a
  delete whose image was lost carries them), and no other property: a column added at the
  source after the schema was printed fails validation until it is printed again.

Pure: no I/O, imports nothing of the project. A document that is not CSDL is `MetadataError`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

__all__ = ["Column", "EntityShape", "MetadataError", "column_schema", "parse_csdl", "row_schema"]


class MetadataError(ValueError):
    """A ``$metadata`` answer that is not an OData CSDL document this module can read."""


@dataclass(frozen=True)
class Column:
    """One structural property of an entity type."""

    name: str
    edm_type: str  # "Edm.String", "Collection(Edm.Int32)", "Namespace.EnumName", ...
    nullable: bool = True
    max_length: int | None = None
    members: tuple[str, ...] | None = None  # the member names when the type is an enum type
    complex: bool = False  # a complex (structured, non-entity) type


@dataclass(frozen=True)
class EntityShape:
    """An entity set's type: its key fields and its columns, as the document declares them."""

    entity_set: str
    type_name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]


# OData JSON format 4.01 section 7.1: Int64 and Decimal are JSON numbers unless the client asks
# for IEEE754Compatible strings (the connectors do not).
_EDM: dict[str, dict[str, Any]] = {
    "Edm.String": {"type": "string"},
    "Edm.Guid": {"type": "string", "format": "uuid"},
    "Edm.Boolean": {"type": "boolean"},
    "Edm.Byte": {"type": "integer"},
    "Edm.SByte": {"type": "integer"},
    "Edm.Int16": {"type": "integer"},
    "Edm.Int32": {"type": "integer"},
    "Edm.Int64": {"type": "integer"},
    "Edm.Decimal": {"type": "number"},
    "Edm.Double": {"type": "number"},
    "Edm.Single": {"type": "number"},
    "Edm.Date": {"type": "string", "format": "date"},
    "Edm.DateTimeOffset": {"type": "string", "format": "date-time"},
    "Edm.TimeOfDay": {"type": "string", "format": "time"},
    "Edm.Duration": {"type": "string", "format": "duration"},
    "Edm.Binary": {"type": "string", "contentEncoding": "base64"},
}


def _tag(element: ET.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]


def _local(qualified: str) -> str:
    """``Microsoft.Dynamics.CRM.account`` / ``mscrm.account`` -> ``account``."""
    return qualified.rsplit(".", 1)[-1]


def _element_type(edm_type: str) -> str:
    return edm_type[len("Collection("):-1] if edm_type.startswith("Collection(") else edm_type


def parse_csdl(document: bytes | str) -> dict[str, EntityShape]:
    """Entity set name -> `EntityShape`, from a CSDL ``$metadata`` document."""
    try:
        root = ET.fromstring(document)
    except (ET.ParseError, ValueError) as exc:
        raise MetadataError(f"not an XML document ({exc})"[:200]) from None
    if _tag(root) != "Edmx":
        raise MetadataError(f"not a CSDL document (root element {_tag(root)!r}, expected 'Edmx')")
    types: dict[str, ET.Element] = {}
    enums: dict[str, tuple[str, ...]] = {}
    complexes: set[str] = set()
    sets: dict[str, str] = {}
    for element in root.iter():
        tag = _tag(element)
        if tag == "EntityType":
            types[element.get("Name", "")] = element
        elif tag == "EnumType":
            enums[element.get("Name", "")] = tuple(
                m.get("Name", "") for m in element if _tag(m) == "Member")
        elif tag == "ComplexType":
            complexes.add(element.get("Name", ""))
        elif tag == "EntitySet":
            sets[element.get("Name", "")] = _local(element.get("EntityType", ""))

    def lineage(name: str) -> list[ET.Element]:
        """The type and its base types, most derived first (a cycle is cut)."""
        chain: list[ET.Element] = []
        while name in types and types[name] not in chain:
            chain.append(types[name])
            name = _local(types[name].get("BaseType", ""))
        return chain

    def column(prop: ET.Element) -> Column:
        edm_type = prop.get("Type", "")
        inner = _local(_element_type(edm_type))
        length = prop.get("MaxLength", "")
        return Column(name=prop.get("Name", ""), edm_type=edm_type,
                      nullable=prop.get("Nullable", "true").lower() != "false",
                      max_length=int(length) if length.isascii() and length.isdigit() else None,
                      members=enums.get(inner) if not edm_type.startswith("Edm.") else None,
                      complex=not edm_type.startswith("Edm.") and inner in complexes)

    out: dict[str, EntityShape] = {}
    for set_name, type_name in sets.items():
        chain = lineage(type_name)
        if not chain:
            continue  # an entity set of a type the document does not declare: nothing to say
        key: tuple[str, ...] = ()
        columns: dict[str, Column] = {}
        for entity in reversed(chain):  # base first, so a derived type's declaration wins
            for child in entity:
                if _tag(child) == "Property":
                    columns[child.get("Name", "")] = column(child)
                elif _tag(child) == "Key":
                    key = tuple(ref.get("Name", "") for ref in child if _tag(ref) == "PropertyRef")
        out[set_name] = EntityShape(set_name, type_name, key, tuple(columns.values()))
    return out


def _scalar_schema(col: Column, edm_type: str) -> dict[str, Any]:
    if col.members is not None:
        return {"type": "string", "enum": list(col.members)}
    if col.complex:
        return {"type": "object"}
    schema = dict(_EDM.get(edm_type, {}))
    if col.max_length is not None and schema.get("type") == "string":
        schema["maxLength"] = col.max_length
    return schema


def column_schema(col: Column, *, key: bool = False) -> dict[str, Any]:
    """One column's JSON Schema; ``null`` is allowed unless the column is a key or declared
    ``Nullable="false"``. ``x-edm-type`` keeps the source type (Decimal versus Double matters
    to a consumer choosing SQL types). An Edm type without a JSON mapping here (geography,
    streams) accepts any value."""
    edm_type = col.edm_type
    if edm_type.startswith("Collection("):
        schema: dict[str, Any] = {"type": "array",
                                  "items": _scalar_schema(col, _element_type(edm_type))}
    else:
        schema = _scalar_schema(col, edm_type)
    if col.nullable and not key and "type" in schema:
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    return {**schema, "x-edm-type": edm_type}


def row_schema(shape: EntityShape, title: str) -> dict[str, Any]:
    """The schema of one row image (``before``/``after``) of the entity set ``shape``."""
    return {
        "type": "object",
        "title": title,
        "properties": {c.name: column_schema(c, key=c.name in shape.key) for c in shape.columns},
        "required": list(shape.key),
        "additionalProperties": False,
    }
