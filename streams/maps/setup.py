"""The first four table maps: setup and configuration data (domain.md 1.1, 1.7, 5).

Legal entities and customers are Finance-mastered and flow to Dataverse; projects and project
tasks are born in Dataverse and flow to Finance. A project's manager (a Dataverse system user)
becomes Finance's ``ProjectManagerPersonnelNumber`` through the user's bookable resource, an
optional lookup (`streams.maps.model.Lookup.optional`): a manager without one leaves it empty.
Dependency order (1.7): legal entity -> customer; contract header (`streams.maps.contracts`) -> project on that contract -> project
task; parent task -> child task.

Each endpoint also declares what the sources need to capture its table (primary key, company
column or company lookup): the registry hands these to the connectors, which guess nothing.
"""

from __future__ import annotations

from streams.maps.contracts import contract_key, waits_for_contract
from streams.maps.model import Condition, Dependency, Endpoint, FieldMap, Lookup, TableMap

__all__ = ["CUSTOMERS", "LEGAL_ENTITIES", "PROJECTS", "PROJECT_TASKS", "SETUP_MAPS"]

LEGAL_ENTITIES = TableMap(
    name="legal_entities",
    source=Endpoint(system="finance", table="LegalEntities", company="dataAreaId"),
    target=Endpoint(system="dataverse", table="cdm_companies", primary_key="cdm_companyid",
                    company="cdm_companycode"),
    key=(FieldMap(target="cdm_companycode", source="dataAreaId", direction="to_dataverse"),),
    fields=(
        FieldMap(target="cdm_name", source="Name", direction="to_dataverse"),
        # The ledger may not be set up yet in a new company; Dataverse needs a currency.
        FieldMap(target="accountingcurrency", source="AccountingCurrency",
                 direction="to_dataverse", default="USD"),
    ),
    filter=(Condition(column="dataAreaId", op="present"),),
    target_id_column="cdm_companyid",
)

# A customer is company-specific: its Dataverse alternate key holds the company's GUID, which
# only exists once the legal entity is in Dataverse - hence the `present` lookup.
_COMPANY_IN_DATAVERSE = Lookup(name="company", column="dataAreaId", ref="present",
                               table="cdm_companies", key_field="cdm_companycode")

CUSTOMERS = TableMap(
    name="customers",
    source=Endpoint(system="finance", table="CustomersV3", company="dataAreaId"),
    target=Endpoint(system="dataverse", table="accounts", primary_key="accountid",
                    company_lookup="_msdyn_company_value"),
    key=(
        FieldMap(target="accountnumber", source="CustomerAccount", direction="to_dataverse"),
        FieldMap(target="_msdyn_company_value", lookup="company", lookup_field="target_id",
                 direction="to_dataverse", in_fields=False),
    ),
    fields=(
        FieldMap(target="name", source="Name", direction="both"),
        FieldMap(target="msdyn_customergroupid", source="CustomerGroupId", direction="to_dataverse"),
        FieldMap(target="transactioncurrencyid", source="SalesCurrencyCode", direction="to_dataverse"),
        FieldMap(target="msdyn_company@odata.bind", lookup="company", lookup_field="target_id",
                 template="/cdm_companies({})", read_as="_msdyn_company_value",
                 direction="to_dataverse"),
    ),
    lookups=(_COMPANY_IN_DATAVERSE,),
    filter=(Condition(column="dataAreaId", op="present"),
            Condition(column="CustomerAccount", op="present")),
    reverse_key=(
        FieldMap(target="dataAreaId", lookup="company", lookup_field="cdm_companycode",
                 direction="to_finance"),
        FieldMap(target="CustomerAccount", source="accountnumber", direction="to_finance"),
    ),
    reverse_lookups=(Lookup(name="company", column="_msdyn_company_value", ref="row",
                            table="cdm_companies", fields=("cdm_companycode",)),),
    master="finance",
    # An account that is a vendor (customertypecode 11) is not a customer this map writes.
    target_scope=(Condition(column="customertypecode", op="ne", value=11),),
    target_id_column="accountid",
)

# Map version 1.0.0.3: statecode 0 active <-> InProcess, 1 inactive <-> Finished. Dataverse to
# Finance only, as Microsoft documents it: a project is closed by deactivating it in Dataverse
# (learn.microsoft.com/dynamics365/project-operations/advanced-configuration/sync-project-status),
# and Finance may add only accounting attributes to a project (.../environment/
# resource-dual-write-setup-integration). Two-way would also put every project change through
# the pairing hop, undoing issue 9's one gate crossing per project change.
# ProjectManagerPersonnelNumber: Dataverse's manager is a system user, Finance wants the worker's
# personnel number, two lookups away: the user's bookable resource (the resource whose `userid`
# names the user, learned from the resources' own feed) and that resource's personnel number.
# The first is optional: a manager who is no bookable resource (or one the worker has not seen
# yet) leaves the field empty instead of parking the project for ever: Finance's ProjectsV2 does
# not require it (a project is valid without a manager), and the project's next change fills it.
_MANAGER_RESOURCE = Lookup(name="manager", column="_msdyn_projectmanager_value", ref="present",
                           table="bookableresources", key_field="_userid_value", optional=True)
_MANAGER_NUMBER = Lookup(name="manager_number", column="target_id", via="manager", ref="row",
                         table="bookableresources", fields=("msdyn_personnelnumber",))

PROJECTS = TableMap(
    name="projects",
    source=Endpoint(system="dataverse", table="msdyn_projects", primary_key="msdyn_projectid",
                    company_lookup="_msdyn_owningcompany_value"),
    target=Endpoint(system="finance", table="ProjectsV2", company="dataAreaId"),
    key=(
        FieldMap(target="dataAreaId", lookup="company", lookup_field="cdm_companycode"),
        FieldMap(target="ProjectId", source="msdyn_projectnumber"),
    ),
    fields=(
        FieldMap(target="ProjectName", source="msdyn_subject"),
        FieldMap(target="ProjectStage", source="statecode",
                 value_map=((0, "InProcess"), (1, "Finished")), default="InProcess"),
        FieldMap(target="ProjectedStartDate", source="msdyn_scheduledstart", kind="date"),
        FieldMap(target="ProjectedEndDate", source="msdyn_finish", kind="date"),
        FieldMap(target="CustomerAccountNumber", lookup="customer", lookup_field="accountnumber"),
        FieldMap(target="ProjectContractId", lookup="contract", lookup_field="ProjectContractId"),
        # Dataverse has no project group: a constant, as dual-write's Default transform gives a
        # required Finance column (TM, time and material; a deployment declares its own group).
        FieldMap(target="ProjectGroupId", const="TM"),
        FieldMap(target="ProjectManagerPersonnelNumber", lookup="manager_number",
                 lookup_field="msdyn_personnelnumber"),
        FieldMap(target="IntegrationSourceDataId", source="msdyn_projectid"),
    ),
    lookups=(
        Lookup(name="company", column="_msdyn_owningcompany_value", ref="row",
               table="cdm_companies", fields=("cdm_companycode",)),
        Lookup(name="customer", column="_msdyn_customer_value", ref="row",
               table="accounts", fields=("accountnumber",)),
        contract_key("_msdyn_salesorderid_value"),
        _MANAGER_RESOURCE,
        _MANAGER_NUMBER,
    ),
    filter=(Condition(column="msdyn_projectnumber", op="present"),
            Condition(column="_msdyn_owningcompany_value", op="present")),
    # A project on a contract waits for the contract in Finance; one without waits for none.
    depends=(waits_for_contract("_msdyn_salesorderid_value"),),
    reads=(Endpoint(system="dataverse", table="bookableresources", primary_key="bookableresourceid"),),
    target_id_column="RecId",
)

PROJECT_TASKS = TableMap(
    name="project_tasks",
    source=Endpoint(system="dataverse", table="msdyn_projecttasks", primary_key="msdyn_projecttaskid"),
    target=Endpoint(system="finance", table="ProjectTasks", company="dataAreaId"),
    key=(
        FieldMap(target="dataAreaId", lookup="project", lookup_field="dataAreaId"),
        FieldMap(target="ProjectId", lookup="project", lookup_field="ProjectId"),
        FieldMap(target="Task", source="msdyn_wbsid"),
    ),
    fields=(
        FieldMap(target="ParentTask", lookup="parent", lookup_field="msdyn_wbsid"),
        FieldMap(target="WorkBreakdownStructureID", source="msdyn_wbsid"),
        FieldMap(target="Name", source="msdyn_subject"),
    ),
    lookups=(
        # The project's Finance key (dataAreaId, ProjectId) as the projects map computed it.
        Lookup(name="project", column="_msdyn_project_value", ref="key", table="projects"),
        Lookup(name="parent", column="_msdyn_parenttask_value", ref="row",
               table="msdyn_projecttasks", fields=("msdyn_wbsid",)),
    ),
    filter=(Condition(column="msdyn_wbsid", op="present"),
            Condition(column="_msdyn_project_value", op="present")),
    depends=(
        Dependency(entity="ProjectsV2",
                   key=(("dataAreaId", "project", "dataAreaId"),
                        ("ProjectId", "project", "ProjectId")),
                   same_tx_column="_msdyn_project_value"),
        # Finance refuses a child task whose (ProjectId, ParentTask) names no task: a child
        # waits for its parent too. A task without a parent has no key here: no wait.
        Dependency(entity="ProjectTasks",
                   key=(("dataAreaId", "project", "dataAreaId"),
                        ("ProjectId", "project", "ProjectId"),
                        ("Task", "parent", "msdyn_wbsid")),
                   same_tx_column="_msdyn_parenttask_value"),
    ),
    target_id_column="RecId",
)

SETUP_MAPS: tuple[TableMap, ...] = (LEGAL_ENTITIES, CUSTOMERS, PROJECTS, PROJECT_TASKS)
