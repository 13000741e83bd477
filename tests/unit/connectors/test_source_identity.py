"""The source and sink commands' configuration: the source's own client identity by default, the
registry's tables with their declarations, the pace and the sink's window from the settings."""

from __future__ import annotations

import pytest

from dualwrite.commands.connectors import (
    dataverse_connection,
    finance_connection,
    sink_settings,
    source_settings,
)
from dualwrite.settings import Settings
from streams.maps import default_registry

pytestmark = pytest.mark.unit


def test_sources_and_sinks_sign_in_as_separate_clients_by_default() -> None:
    s = Settings.model_validate({"dataverse": {"client_secret": "dv-secret"}})
    sink, source = dataverse_connection(s), dataverse_connection(s, source=True)
    assert (sink.client_id, source.client_id) == ("dualwrite", "dualwrite-source")
    assert source.client_secret.get_secret_value() == "dv-secret"  # shared unless set
    assert finance_connection(s, source=True).client_id == "dualwrite-source"


def test_a_source_secret_of_its_own_is_used_and_stays_secret() -> None:
    s = Settings.model_validate({"finance": {"source_client_id": "capture", "source_client_secret": "src-42"}})
    conn = finance_connection(s, source=True)
    assert conn.client_id == "capture" and conn.client_secret.get_secret_value() == "src-42"
    assert "src-42" not in repr(conn) and "src-42" not in repr(s)


def test_the_source_captures_the_registry_tables_with_their_keys_and_the_pace_of_the_settings() -> None:
    s = Settings.model_validate({"dataverse": {"poll_idle_max_s": 20, "poll_hot_s": 5}})
    cfg = source_settings(s, "dataverse", None, None)
    # Exactly the registry's Dataverse tables, in its order (maps are added there, not here).
    assert cfg.tables == tuple(ep.table for ep in default_registry().captured("dataverse"))
    assert {"cdm_companies", "accounts", "msdyn_projects", "msdyn_projecttasks"} <= set(cfg.tables)
    declared = {d.name: d for d in cfg.declared}
    assert declared["msdyn_projecttasks"].primary_key == "msdyn_projecttaskid"
    assert (cfg.poll_interval_s, cfg.idle_max_s, cfg.hot_s) == (0.25, 20, 5)
    assert source_settings(s, "dataverse", ["accounts"], 1.0).tables == ("accounts",)
    # The sink addresses rows by the same declared keys.
    assert dataverse_connection(s).primary_keys["accounts"] == "accountid"


def test_many_idle_tables_together_stay_within_the_idle_budget() -> None:
    """The idle wait grows with the number of tables: 17 tables at 0.8 requests/s wait 21.25 s
    each (at the 10 s cap alone they would cost 1.7 requests/s); few tables keep the cap."""
    many = source_settings(Settings(), "dataverse", [f"t{i}" for i in range(17)], None)
    assert many.pace.idle_max_s == pytest.approx(17 / 0.8)
    assert len(many.tables) / many.pace.idle_max_s <= 0.8
    few = source_settings(Settings(), "dataverse", ["accounts", "cdm_companies"], None)
    assert few.pace.idle_max_s == 10.0
    tight = Settings.model_validate({"dataverse": {"poll_idle_budget_rps": 4.0}})
    assert source_settings(tight, "dataverse", [f"t{i}" for i in range(17)], None).pace.idle_max_s == 10.0


def test_each_sink_takes_its_targets_linger_and_transaction_wait_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("DUALWRITE_FINANCE__SINK_LINGER_S", "0.3")
    monkeypatch.setenv("DUALWRITE_FINANCE__SINK_TX_WAIT_S", "7")
    s = Settings()
    finance = sink_settings(s, "finance", 50, 0.5, None)
    assert (finance.target, finance.linger_s, finance.tx_wait_s, finance.batch_size) == ("finance", 0.3, 7, 50)
    dataverse = sink_settings(s, "dataverse", 10, 0.5, "g")
    assert dataverse.linger_s == Settings().dataverse.sink_linger_s != 0.3
    assert (dataverse.target, dataverse.group_id) == ("dataverse", "g")


def test_a_table_no_map_reads_nor_extra_tables_names_is_said_to_be_the_cause() -> None:
    from dualwrite.commands.connectors import outside_catalog_hint

    assert outside_catalog_hint(source_settings(Settings(), "dataverse", ["accounts"], None)) == ""
    hint = outside_catalog_hint(source_settings(Settings(), "dataverse", ["accounts", "msdyn_typo"], None))
    assert "No map reads msdyn_typo and DUALWRITE_DATAVERSE__EXTRA_TABLES does not name it" in hint
    extra = Settings.model_validate({"dataverse": {"extra_tables": "msdyn_typo"}})
    assert outside_catalog_hint(source_settings(extra, "dataverse", ["msdyn_typo"], None)) == ""
