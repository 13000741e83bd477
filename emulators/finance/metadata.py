"""``$metadata``: a CSDL document generated from the entity declarations.

Enough for tools that read entity sets, keys and property types; FO's real document also
carries navigation properties, enum types and annotations, which we do not reproduce (enum
fields are declared as ``Edm.String`` here because we serialise them by symbol).
"""

from __future__ import annotations

from collections.abc import Iterable
from xml.sax.saxutils import quoteattr

from emulators.finance.schema import Entity

__all__ = ["csdl"]

_EDM = {"str": "Edm.String", "int": "Edm.Int32", "real": "Edm.Decimal",
        "date": "Edm.DateTimeOffset", "datetime": "Edm.DateTimeOffset", "enum": "Edm.String"}
NAMESPACE = "Microsoft.Dynamics.DataEntities"


def _entity_type(ent: Entity) -> str:
    keys = "".join(f"<PropertyRef Name={quoteattr(k)}/>" for k in ent.key)
    props = [f"<Property Name={quoteattr(f.name)} Type=\"{_EDM[f.type]}\""
             + (f" MaxLength=\"{f.size}\"" if f.size else "")
             + (" Nullable=\"false\"" if f.name in ent.key else "") + "/>" for f in ent.fields]
    props += ['<Property Name="RecId" Type="Edm.Int64" Nullable="false"/>',
              '<Property Name="RecVersion" Type="Edm.Int32" Nullable="false"/>',
              '<Property Name="ModifiedDateTime" Type="Edm.DateTimeOffset"/>']
    return (f"<EntityType Name={quoteattr(ent.name)}><Key>{keys}</Key>{''.join(props)}"
            "</EntityType>")


def csdl(entities: Iterable[Entity]) -> str:
    ents = list(entities)
    types = "".join(_entity_type(e) for e in ents)
    sets = "".join(f"<EntitySet Name={quoteattr(e.name)} EntityType=\"{NAMESPACE}.{e.name}\"/>"
                   for e in ents)
    return ('<?xml version="1.0" encoding="utf-8"?>'
            '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">'
            f'<edmx:DataServices><Schema Namespace="{NAMESPACE}" '
            'xmlns="http://docs.oasis-open.org/odata/ns/edm">'
            f'{types}<EntityContainer Name="Resources">{sets}</EntityContainer>'
            "</Schema></edmx:DataServices></edmx:Edmx>")
