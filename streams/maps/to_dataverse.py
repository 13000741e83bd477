"""Pieces shared by the maps from Finance to Dataverse (prerequisites, expenses): a Finance row
names its legal entity by code, while a Dataverse row binds the company's GUID, which exists only
once the legal entity has been written there, so such a row waits for it.

- `COMPANY`: the ``present`` lookup of the row's legal entity in Dataverse (its GUID).
- `company_key`: the company GUID as part of the Dataverse row's key (company-specific tables).
- `bind`: a Dataverse lookup column bound to the GUID a ``present`` lookup found.
- `to_dv`: a field written to Dataverse only; `present`: a filter on columns that must be set.
"""

from __future__ import annotations

from streams.maps.model import Condition, FieldMap, Lookup

__all__ = ["COMPANY", "bind", "company_key", "present", "to_dv"]

COMPANY = Lookup(name="company", column="dataAreaId", ref="present", table="cdm_companies",
                 key_field="cdm_companycode")


def company_key() -> FieldMap:
    return FieldMap(target="_msdyn_company_value", lookup="company", lookup_field="target_id",
                    direction="to_dataverse", in_fields=False)


def bind(column: str, lookup: str, entity_set: str) -> FieldMap:
    """The Dataverse lookup ``column`` bound to the GUID ``lookup``'s presence fact carries."""
    return FieldMap(target=f"{column}@odata.bind", lookup=lookup, lookup_field="target_id",
                    template=f"/{entity_set}({{}})", read_as=f"_{column}_value",
                    direction="to_dataverse")


def to_dv(target: str, source: str, **kw: object) -> FieldMap:
    return FieldMap.model_validate({"target": target, "source": source,
                                    "direction": "to_dataverse", **kw})


def present(*columns: str) -> tuple[Condition, ...]:
    return tuple(Condition(column=c, op="present") for c in columns)
