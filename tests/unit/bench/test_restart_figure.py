"""P6's fill and row: synthetic keys in the worker's own key format, split evenly over the tables,
and the restart's seconds next to the full changelog replay's."""

from __future__ import annotations

import pytest

from bench.restart import RestartBench, restart_figure, split, synthetic_key
from bench.workload import probe_id, probe_number

pytestmark = pytest.mark.unit


def test_a_synthetic_key_swaps_the_probes_id_and_number_and_keeps_the_rest() -> None:
    facts = f'"key:projects:{probe_id(0)}"'.encode()
    present = f'"present:msdyn_projects(msdyn_projectnumber=\'{probe_number(0)}\')"'.encode()
    keys = [synthetic_key(facts, n) for n in range(1000)] + [synthetic_key(present, n) for n in range(1000)]
    assert len(set(keys)) == 2000
    assert keys[1] == b'"key:projects:80000000-0000-0000-0000-000000000001"'
    assert keys[1001] == b'"present:msdyn_projects(msdyn_projectnumber=\'FILL-0000001\')"'


def test_a_key_about_something_else_is_refused() -> None:
    with pytest.raises(ValueError, match="neither"):
        synthetic_key(b'"row:dataverse:cdm_companies:c0de"', 1)


def test_keys_are_split_evenly_over_the_three_tables() -> None:
    assert split(1_000_000) == {"versions": 333_334, "facts": 333_333, "targets": 333_333}
    assert sum(split(3001).values()) == 3001


def test_the_row_is_the_restart_next_to_the_full_replay() -> None:
    result = RestartBench(keys=3000, per_table=split(3000), restart_s=3.0, replay_s=12.0, warmed_facts=1004)
    row = restart_figure(result)
    assert (row.key, row.value, row.peer, row.ratio) == ("p6", 3.0, 12.0, 0.25)
    assert row.cells()[2:] == ("12.00 s (full changelog replay)", "25.0%", "<= 30 s")
    assert "3,000 keys" in row.label and "restart included" not in row.label
    assert row.detail["facts_keys"] == 1000 and row.detail["warmed_facts"] == 1004


def test_restarts_by_the_supervisor_are_shown_where_they_happened() -> None:
    row = restart_figure(RestartBench(keys=3000, per_table=split(3000), restart_s=3.0, replay_s=40.0,
                                      warmed_facts=1004, restarts=0, replay_restarts=1))
    assert "restart included" not in row.label
    assert row.cells()[2] == "40.00 s (full changelog replay, 1 worker restart included)"
    assert (row.detail["worker_restarts"], row.detail["replay_worker_restarts"]) == (0, 1)
