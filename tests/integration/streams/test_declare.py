"""The worker's own topics exist, as Faust would create them, before it joins its group.

A CI run lost every change: the broker's metadata did not list the just-created gate topic when
the group leader assigned partitions, so the gate was assigned to nobody, and a static member
restarted by the watchdog took that assignment back unchanged on every restart."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from streams import StreamsConfig, create_app
from streams.declare import TopicsNotReady, declare_internal_topics, internal_topics
from tests.integration.streams.harness import WorkerProcess


def _declare(bootstrap: str, app_id: str, timeout_s: float = 30.0, **overrides: object) -> list:
    config = StreamsConfig(bootstrap_servers=bootstrap, app_id=app_id, store="memory://",
                           **overrides)
    topics = internal_topics(create_app(config))
    asyncio.run(declare_internal_topics(topics, bootstrap_servers=config.bootstrap_list(),
                                        auth=config.aiokafka_auth(), timeout_s=timeout_s))
    return topics


def test_the_gate_and_changelog_topics_are_created_with_fausts_settings(kafka_bootstrap: str,
                                                                        unique: str) -> None:
    app_id = f"decl-{unique}"
    topics = _declare(kafka_bootstrap, app_id, partitions=4)
    names = {t.name for t in topics}
    assert names == {f"{app_id}-gate", *(f"{app_id}-{table}-changelog" for table in
                     ("versions", "facts", "targets", "parked", "pairs", "states"))}

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    listed = admin.list_topics(timeout=10).topics
    assert all(len(listed[name].partitions) == 4 for name in names)  # listed on return
    configs = {r.name: f.result(30) for r, f in admin.describe_configs(
        [ConfigResource(ConfigResource.Type.TOPIC, n) for n in names]).items()}
    assert configs[f"{app_id}-gate"]["cleanup.policy"].value == "delete"  # offsets contiguous
    assert {configs[n]["cleanup.policy"].value for n in names - {f"{app_id}-gate"}} == {"compact"}

    assert _declare(kafka_bootstrap, app_id, partitions=4) == topics  # again: nothing to do


def test_a_topic_the_cluster_refuses_is_a_typed_error(kafka_bootstrap: str, unique: str) -> None:
    with pytest.raises(TopicsNotReady, match=r"refused to create the worker's topics.*gate"):
        _declare(kafka_bootstrap, f"decl-{unique}", replication=5)  # one broker


def test_an_unreachable_cluster_is_a_typed_error_after_the_timeout(unique: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}"
    started = time.monotonic()
    with pytest.raises(TopicsNotReady, match=r"does not list decl-.*-gate.*dualwrite kafka status"):
        _declare(closed, f"decl-{unique}", timeout_s=3)
    assert time.monotonic() - started < 30


def test_the_worker_declares_its_topics_before_it_joins_its_group(
        kafka_bootstrap: str, prefix: str, unique: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMS_TEST_LOGLEVEL", "info")
    app_id = f"streams-{unique}"
    proc = WorkerProcess(kafka_bootstrap, app_id, prefix, tmp_path / "state", tmp_path / "w.log")
    proc.start()
    try:
        deadline = time.monotonic() + 120
        while ("Joined group" not in proc.log.read_text(errors="replace")
               and time.monotonic() < deadline):
            proc.check()
            time.sleep(0.5)
        log = proc.log.read_text(errors="replace")
        assert "Joined group" in log, proc.tail()
        declared = log.find(f"created the worker's topics {app_id}-gate")
        assert 0 <= declared < log.find("Joined group"), proc.tail()
        assert "Ignoring missing topic: '" + f"{app_id}-gate" not in log
    finally:
        proc.stop()


def test_a_worker_configured_for_other_partitions_than_its_topics_is_refused(
        kafka_bootstrap: str, unique: str) -> None:
    app_id = f"decl-{unique}"
    _declare(kafka_bootstrap, app_id, partitions=2)
    with pytest.raises(TopicsNotReady, match=rf"{app_id}-gate has 2, .* partitions where this "
                                             r"worker has 3 \(DUALWRITE_TOPICS__PARTITIONS\)"):
        _declare(kafka_bootstrap, app_id, partitions=3)
