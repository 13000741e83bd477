"""Field coercion and entity declarations."""

from __future__ import annotations

import pytest

from emulators.finance.entities import ENTITIES, entity, entity_named
from emulators.finance.schema import CoercionError, Field, coerce

pytestmark = pytest.mark.unit


def test_dates_become_fo_noon_utc_date_time_offsets() -> None:
    f = Field("D", "date")
    assert coerce(f, "2026-03-15") == "2026-03-15T12:00:00Z"
    assert coerce(f, "2026-03-15T00:00:00Z") == "2026-03-15T12:00:00Z"
    with pytest.raises(CoercionError):
        coerce(f, "15/03/2026")


def test_date_times_are_normalised_to_utc() -> None:
    assert coerce(Field("T", "datetime"), "2026-03-15T10:30:00+02:00") == "2026-03-15T08:30:00Z"


def test_enums_accept_only_their_symbols() -> None:
    f = Field("Stage", "enum", enum=("InProcess", "Finished"))
    assert coerce(f, "Finished") == "Finished"
    with pytest.raises(CoercionError, match="InProcess, Finished"):
        coerce(f, "Closed")


def test_strings_respect_their_size_and_type() -> None:
    f = Field("Id", "str", size=4)
    assert coerce(f, "usmf") == "usmf"
    with pytest.raises(CoercionError):
        coerce(f, "toolong")
    with pytest.raises(CoercionError):
        coerce(f, 12)


def test_numbers_reject_booleans() -> None:
    assert coerce(Field("A", "real"), 3) == 3.0
    with pytest.raises(CoercionError):
        coerce(Field("A", "real"), True)
    with pytest.raises(CoercionError):
        coerce(Field("N", "int"), 1.5)


def test_every_reference_names_a_declared_entity_and_field() -> None:
    for ent in ENTITIES:
        for ref in ent.refs:
            target = entity_named(ref.target)
            assert all(ent.get(f) for f in ref.fields), (ent.name, ref)
            assert set(ref.target_fields) <= set(target.key), (ent.name, ref)


def test_contract_field_names_are_declared() -> None:
    projects = entity_named("ProjectsV2")
    assert projects.key == ("dataAreaId", "ProjectId")
    assert {"ProjectName", "ProjectContractId", "CustomerAccountNumber", "ProjectGroupId",
            "ProjectStage", "ProjectedStartDate", "ProjectedEndDate",
            "ProjectManagerPersonnelNumber", "SalesTaxGroupId", "DimensionDisplayValue",
            "IntegrationSourceDataId"} <= set(projects.field_names)
    assert entity_named("ProjectTasks").key == ("dataAreaId", "ProjectId", "Task")
    assert entity_named("CustomersV3").key == ("dataAreaId", "CustomerAccount")


def test_entity_lookup_is_case_insensitive() -> None:
    assert entity("projectsv2") is entity_named("ProjectsV2")
    assert entity("Nope") is None
