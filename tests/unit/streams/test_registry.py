"""The registry as the one place that says what is captured: tables, keys, company columns,
the CDC topics of the catalog, and a registry named in the settings."""

from __future__ import annotations

import pytest

from dualwrite.capture import capture_tables, cdc_tables, topic_catalog
from dualwrite.settings import Settings
from streams.maps import (
    LEGAL_ENTITIES,
    SETUP_MAPS,
    Endpoint,
    FieldMap,
    MapRegistry,
    RegistryError,
    TableMap,
    default_registry,
    load_registry,
)

pytestmark = pytest.mark.unit

VENDORS = TableMap(
    name="vendors",
    source=Endpoint(system="finance", table="VendorsV2", company="dataAreaId"),
    target=Endpoint(system="dataverse", table="msdyn_vendors", primary_key="msdyn_vendorid"),
    key=(FieldMap(target="msdyn_vendoraccountnumber", source="VendorAccountNumber", direction="to_dataverse"),),
    fields=(FieldMap(target="msdyn_vendorname", source="Name", direction="to_dataverse"),),
)
REGISTRY = MapRegistry((*SETUP_MAPS, VENDORS))


def settings(**env: str) -> Settings:
    return Settings.model_validate(env)


def test_sources_capture_exactly_the_tables_the_maps_read_and_write() -> None:
    maps = MapRegistry(SETUP_MAPS)
    assert [t.table for t in maps.captured("dataverse")] == \
        ["cdm_companies", "accounts", "msdyn_projects", "bookableresources", "msdyn_projecttasks"]
    assert [t.table for t in maps.captured("finance")] == \
        ["LegalEntities", "CustomersV3", "ProjectsV2", "ProjectContractHeaders", "ProjectTasks"]


def test_keys_and_company_columns_come_from_the_declarations() -> None:
    tables = {t.name: t for t in capture_tables(settings(), "dataverse")}
    assert tables["cdm_companies"].primary_key == "cdm_companyid"
    assert tables["cdm_companies"].company == "cdm_companycode"
    assert tables["accounts"].company_lookup == "_msdyn_company_value"
    assert tables["msdyn_projects"].company_lookup == "_msdyn_owningcompany_value"
    assert tables["msdyn_projecttasks"].primary_key == "msdyn_projecttaskid"


def test_a_map_added_to_a_registry_adds_its_tables_and_topics_and_nothing_else() -> None:
    before = {s.name for s in topic_catalog(settings(), MapRegistry(SETUP_MAPS))}
    after = {s.name for s in topic_catalog(settings(), REGISTRY)}
    assert after - before == {"finance.cdc.vendorsv2", "dataverse.cdc.msdyn_vendors"}
    # Tables no map reads are not provisioned (the old hand-kept list had 45).
    assert "dataverse.cdc.msdyn_actuals" not in after and "finance.cdc.exchangerates" not in after


def test_extra_tables_from_the_settings_are_captured_with_their_key() -> None:
    s = settings(dataverse={"extra_tables": "msdyn_actuals:msdyn_actualid, cdm_companies"},
                 finance={"extra_tables": "ExchangeRates"})
    dv = {t.name: t for t in capture_tables(s, "dataverse")}
    assert dv["msdyn_actuals"].primary_key == "msdyn_actualid"
    assert list(dv).count("cdm_companies") == 1
    assert ("finance", "ExchangeRates") in cdc_tables(s)


def test_two_maps_declaring_one_table_differently_are_refused() -> None:
    other = LEGAL_ENTITIES.model_copy(update={
        "name": "other", "target": Endpoint(system="dataverse", table="cdm_companies", primary_key="id")})
    with pytest.raises(RegistryError, match="primary_key declared as both"):
        MapRegistry((LEGAL_ENTITIES, other))


def test_a_dataverse_table_without_a_declared_key_is_an_error_not_a_guess() -> None:
    bare = VENDORS.model_copy(update={"target": Endpoint(system="dataverse", table="msdyn_vendors")})
    with pytest.raises(RegistryError, match="msdyn_vendors"):
        MapRegistry((bare,)).captured("dataverse")


def test_a_lookup_table_no_map_writes_is_declared_in_reads() -> None:
    reads = VENDORS.model_copy(update={"reads": (Endpoint(system="dataverse", table="msdyn_vendors",
                                                          company_lookup="_msdyn_company_value"),)})
    (vendors,) = MapRegistry((reads,)).captured("dataverse")
    assert (vendors.primary_key, vendors.company_lookup) == ("msdyn_vendorid", "_msdyn_company_value")


def test_company_and_company_lookup_together_are_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        Endpoint(system="dataverse", table="accounts", company="x", company_lookup="_y_value")


def test_load_registry_by_name() -> None:
    assert load_registry("").maps == default_registry().maps
    assert set(SETUP_MAPS) <= set(default_registry().maps)
    assert load_registry(f"{__name__}:REGISTRY") is REGISTRY
    assert load_registry("streams.maps:SETUP_MAPS").maps == SETUP_MAPS
    assert load_registry("streams.maps:default_registry").maps == default_registry().maps
    for bad in ("streams.maps", "no.such.module:X", "streams.maps:nothing", "streams.maps:PROJECTS"):
        with pytest.raises(RegistryError):
            load_registry(bad)


def test_the_maps_setting_is_checked_at_load() -> None:
    from pydantic import ValidationError

    from dualwrite.settings import invalid_settings

    assert settings(processor={"maps": f"{__name__}:REGISTRY"}).processor.maps.endswith(":REGISTRY")
    with pytest.raises(ValidationError) as info:
        settings(processor={"maps": "no.such.module:X"})
    (line,) = invalid_settings(info.value)
    assert line.startswith("DUALWRITE_PROCESSOR__MAPS: ") and "no.such.module" in line
