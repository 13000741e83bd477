"""The topic catalog: every topic of the system declared once.

Names: ``<system>.cdc.<table>`` (captured changes), ``sync.commands.<target>``,
``sync.applied.<target>``, ``sync.dlq``, ``sync.control``, ``sync.source-offsets``. Faust adds
its own changelog topics, which are not declared here.

All keyed topics that the processor joins share one partition count, so a record's CDC events,
its commands and its acks are co-partitioned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from topics.commands import Applied, Command
from topics.control import MapState, SourceOffset, SourceOffsetKey
from topics.envelope import ChangeEvent, ChangeKey, System

__all__ = [
    "DATAVERSE_CDC_TABLES",
    "FINANCE_CDC_ENTITIES",
    "Cleanup",
    "TopicSpec",
    "applied_topic",
    "catalog",
    "cdc_topic",
    "commands_topic",
]

Cleanup = Literal["delete", "compact", "compact,delete"]

DAY_MS = 24 * 3600 * 1000

# Dataverse entity sets captured (domain.md 5.1): DV-mastered rows that flow to Finance, and the
# FO-originated rows whose arrival in Dataverse the processor must see (presence, echoes).
DATAVERSE_CDC_TABLES: tuple[str, ...] = (
    "cdm_companies",
    "accounts",
    "msdyn_vendors",
    "bookableresourcecategories",
    "bookableresources",
    "msdyn_transactioncategories",
    "msdyn_expensecategories",
    "salesorders",
    "msdyn_projectcontractsplitbillingrules",
    "msdyn_projects",
    "msdyn_projecttasks",
    "salesorderdetails",
    "msdyn_contractlinescheduleofvalues",
    "msdyn_resourceassignments",
    "msdyn_estimatelines",
    "msdyn_actuals",
    "msdyn_transactionconnections",
    "invoices",
    "msdyn_expenses",
    "msdyn_projectvendorinvoices",
    "msdyn_projectvendorinvoicelines",
)

# Finance public collections captured from the emulator's change feed (domain.md 5.2).
FINANCE_CDC_ENTITIES: tuple[str, ...] = (
    "LegalEntities",
    "ExchangeRates",
    "CustomersV3",
    "VendorsV2",
    "ResourceRoles",
    "TransactionCategories",
    "ExpenseCategories",
    "ProjectContractHeaders",
    "ProjectFundingSources",
    "ProjectsV2",
    "ProjectTasks",
    "ProjectContractLines",
    "OnAccountTransactions",
    "HourEstimateStaging",
    "ExpenseEstimateStaging",
    "ActualsStaging",
    "TransactionRelationships",
    "InvoiceProposals",
    "ExpenseReportLines",
    "PendingVendorInvoices",
    "PendingVendorInvoiceLines",
    # Rows that posting an expense report / a vendor invoice writes: what flows on to Dataverse.
    "ProjectExpenses",
    "ProjectVendorInvoices",
    "ProjectVendorInvoiceLines",
)


@dataclass(frozen=True)
class TopicSpec:
    """One topic: name, layout, retention and the models of its key and value."""

    name: str
    partitions: int
    replication: int
    cleanup: Cleanup
    retention_ms: int | None
    key_model: type[BaseModel] | None
    value_model: type[BaseModel] | None
    description: str

    def configs(self) -> dict[str, str]:
        """Topic-level configs the broker must hold for this topic."""
        out: dict[str, str] = {"cleanup.policy": self.cleanup}
        if self.retention_ms is not None:
            out["retention.ms"] = str(self.retention_ms)
        return out


def cdc_topic(system: System, table: str) -> str:
    """``dataverse.cdc.msdyn_actuals``, ``finance.cdc.projectsv2``."""
    return f"{system}.cdc.{table.lower()}"


def commands_topic(target: System) -> str:
    return f"sync.commands.{target}"


def applied_topic(target: System) -> str:
    return f"sync.applied.{target}"


def catalog(
    partitions: int = 3,
    replication: int = 1,
    cdc_retention_days: int = 14,
    dlq_retention_days: int = 30,
) -> list[TopicSpec]:
    """Every topic of the system, in a stable order."""
    cdc_ms = cdc_retention_days * DAY_MS
    specs: list[TopicSpec] = []
    sources: tuple[tuple[System, tuple[str, ...]], ...] = (
        ("dataverse", DATAVERSE_CDC_TABLES), ("finance", FINANCE_CDC_ENTITIES))
    for system, tables in sources:
        for table in tables:
            specs.append(TopicSpec(
                cdc_topic(system, table), partitions, replication, "delete", cdc_ms, ChangeKey,
                ChangeEvent, f"Changes captured from {system} {table} (Debezium-compatible JSON).",
            ))
    targets: tuple[System, ...] = ("finance", "dataverse")
    for target in targets:
        specs.append(TopicSpec(
            commands_topic(target), partitions, replication, "delete", cdc_ms, None, Command,
            f"Writes released by the processor for the {target} sink; key = target record key.",
        ))
        specs.append(TopicSpec(
            applied_topic(target), partitions, replication, "compact,delete", cdc_ms, None, Applied,
            f"Writes the {target} target acknowledged; feeds the gate and the echo filter.",
        ))
    specs.append(TopicSpec(
        "sync.dlq", partitions, replication, "delete", dlq_retention_days * DAY_MS, None, None,
        "Dead letters: the original record with dlq.* headers naming stage, map, error and origin.",
    ))
    specs.append(TopicSpec(
        "sync.control", 1, replication, "compact", None, None, MapState,
        "Map state (running/paused), keyed by map name.",
    ))
    specs.append(TopicSpec(
        "sync.source-offsets", 1, replication, "compact", None, SourceOffsetKey, SourceOffset,
        "Source connector checkpoints (delta links, feed watermarks), compacted.",
    ))
    return specs
