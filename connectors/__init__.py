"""The edges: one subpackage per system over shared machinery. Imports only `topics`.

    connectors.common      auth (OAuth2 client credentials), http (outcomes, retries,
                           Retry-After), aimd, batch ($batch bodies), kafka (idempotent producer,
                           compacted reads), checkpoints, sinkstate (coalesce, applied state),
                           writer (OData write units), source / sink (the engines), metrics
    connectors.dataverse   DataverseConnection, DataverseReader (delta links), DataverseWriter
    connectors.finance     FinanceConnection, FinanceReader (change feed), FinanceWriter

Run one programmatically (the CLI does exactly this from `dualwrite.settings.Settings`)::

    engine = dataverse_source(DataverseConnection(...), KafkaConfig(bootstrap_servers=...),
                              SourceSettings(system="dataverse", tables=("msdyn_projects",)))
    await engine.run(stop_event)            # or finance_source / dataverse_sink / finance_sink

Every topic name and group id is a field of `SourceSettings` / `SinkSettings`, so tests and
parallel environments isolate themselves; ``transport=`` (httpx) and ``clock=`` are the seams.
"""
