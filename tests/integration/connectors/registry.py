"""A test registry: the built-in maps plus one more (Finance vendors -> Dataverse vendors),
declared here and nowhere else. Processes load it through ``DUALWRITE_PROCESSOR__MAPS``."""

from __future__ import annotations

from streams.maps import SETUP_MAPS, Endpoint, FieldMap, Lookup, MapRegistry, TableMap

VENDORS = TableMap(
    name="vendors",
    source=Endpoint(system="finance", table="VendorsV2", company="dataAreaId"),
    target=Endpoint(system="dataverse", table="msdyn_vendors", primary_key="msdyn_vendorid",
                    company_lookup="_msdyn_company_value"),
    key=(
        FieldMap(target="msdyn_vendoraccountnumber", source="VendorAccountNumber", direction="to_dataverse"),
        FieldMap(target="_msdyn_company_value", lookup="company", lookup_field="target_id",
                 direction="to_dataverse", in_fields=False),
    ),
    fields=(
        FieldMap(target="msdyn_vendorname", source="Name", direction="to_dataverse"),
        FieldMap(target="msdyn_vendorgroupid", source="VendorGroupId", direction="to_dataverse"),
        FieldMap(target="msdyn_company@odata.bind", lookup="company", lookup_field="target_id",
                 template="/cdm_companies({})", read_as="_msdyn_company_value", direction="to_dataverse"),
    ),
    lookups=(Lookup(name="company", column="dataAreaId", ref="present", table="cdm_companies",
                    key_field="cdm_companycode"),),
    target_id_column="msdyn_vendorid",
)

REGISTRY = MapRegistry((*SETUP_MAPS, VENDORS))
