from __future__ import annotations

import pytest

from streams import StreamsConfig, create_app
from streams.declare import catalog_topics, sized_unlike

pytestmark = pytest.mark.unit


def test_only_a_cdc_topic_must_have_the_workers_partition_count() -> None:
    app = create_app(StreamsConfig(app_id="unit-declare", store="memory://", partitions=4, topic_prefix="p."))
    required = catalog_topics(app)
    assert required["p.dataverse.cdc.msdyn_projects"] == 4
    assert required["p.sync.applied.finance"] is None and required["p.sync.control"] is None
    assert required["p.sync.commands.dataverse"] is None and required["p.sync.dlq"] is None
    assert all(count == 4 for name, count in required.items() if ".cdc." in name)
    assert not any(name.endswith("-gate") for name in required)  # the worker's own: `declare_internal_topics`


def test_sized_unlike_names_each_topic_of_another_count_and_ignores_the_unsized() -> None:
    required = {"a": 3, "b": 3, "acks": None}
    assert sized_unlike(required, {"a": 3, "b": 6, "acks": 9}) == ["b has 6"]
    assert sized_unlike(required, {"a": 3, "b": 3, "acks": 1}) == []
    assert sized_unlike(required, {"a": 1}) == ["a has 1"]  # an undescribed one is not judged here
