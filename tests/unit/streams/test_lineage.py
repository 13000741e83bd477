"""The batch engine's offset commits carry its mark (`streams.lineage`); the Faust agents' check
over a real broker is `tests/integration/streams/test_declare.py`."""

import pytest
from confluent_kafka import TopicPartition

from streams.lineage import BATCH_METADATA, marked

pytestmark = pytest.mark.unit


def test_offsets_are_committed_as_they_are_with_the_batch_engine_s_mark():
    offsets = [TopicPartition("dataverse.cdc.msdyn_projects", 2, 41), TopicPartition("gate", 0, 7)]
    out = marked(offsets)
    assert [(tp.topic, tp.partition, tp.offset) for tp in out] == [
        ("dataverse.cdc.msdyn_projects", 2, 41), ("gate", 0, 7)]
    assert {tp.metadata for tp in out} == {BATCH_METADATA}
