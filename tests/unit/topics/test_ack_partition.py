"""An ack's partition is the one the worker's producer gives the row's gate key."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner

from topics import ack_partition, present_fact, target_key

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("partitions", [1, 3, 12])
def test_an_ack_goes_to_the_partition_the_worker_sends_its_rows_gate_key_to(partitions):
    everyone = list(range(partitions))
    keys = [target_key("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": f"PRJ-{n:04d}"}) for n in range(200)]
    keys += ["ProjectTasks(ProjectId='O''Brien \u00e9',Task='1.1',dataAreaId='usmf')", "x" * 3000]
    for key in keys:
        gate_partition = DefaultPartitioner()(present_fact(key).encode(), everyone, everyone)
        assert ack_partition(key, partitions) == gate_partition
    assert {ack_partition(k, partitions) for k in keys} == set(everyone)  # every partition gets some
