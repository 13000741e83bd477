"""The worker's own topics (the gate topic and the tables' changelogs) exist, and the cluster's
metadata lists them, before the worker joins its consumer group.

Faust creates them itself while it starts, a moment before it subscribes. On a loaded machine
the broker's metadata did not list the new gate topic yet when the group leader computed the
assignment (CI, hostile-input run): Faust's assignor logged "Ignoring missing topic" and gave
the gate partitions to nobody. A static member (``--instance-id``) restarted by the watchdog
takes that cached assignment back without a rebalance, so the gate stayed unassigned across
every restart and nothing flowed. Declaring the topics here, and waiting until a metadata request
lists each with all its partitions, leaves the race no window: the group is joined afterwards.

The topics are declared exactly as Faust would declare them (same partitions, replication and
cleanup policy, taken from the Faust topic objects), so Faust finds them present and moves on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from mode.utils.times import want_seconds

__all__ = ["InternalTopic", "TopicsNotReady", "await_catalog_topics", "catalog_topics", "declare_internal_topics",
           "internal_topics", "sized_unlike"]

log = logging.getLogger(__name__)

_NO_ERROR, _TOPIC_ALREADY_EXISTS = 0, 36


class TopicsNotReady(RuntimeError):
    """The cluster refused to create, or did not list in time, a topic the worker owns."""


@dataclass(frozen=True)
class InternalTopic:
    name: str
    partitions: int
    replication: int
    config: Mapping[str, str]


def _spec(app: Any, topic: Any) -> list[InternalTopic]:
    """The topic(s) of a Faust topic object, with the settings `faust.Topic.declare` uses."""
    partitions = topic.partitions or app.conf.topic_partitions
    replication = topic.replicas or app.conf.topic_replication_factor or 1
    policy = {flag for flag, on in (("compact", topic.compacting), ("delete", topic.deleting)) if on}
    config: dict[str, str] = {}
    if policy:
        config["cleanup.policy"] = ",".join(sorted(policy))
    if topic.retention:
        config["retention.ms"] = str(int(want_seconds(topic.retention) * 1000))
    config.update({k: str(v) for k, v in (topic.config or {}).items()})
    return [InternalTopic(name, partitions, replication, config) for name in topic.topics]


def internal_topics(app: Any) -> list[InternalTopic]:
    """The gate topic and every table's changelog topic of a `streams.app.create_app` app."""
    rt = app.runtime
    owned = [rt.topic("gate"), *(table.changelog_topic for table in rt.tables.values())]
    return [spec for topic in owned for spec in _spec(app, topic)]


def catalog_topics(app: Any) -> dict[str, int | None]:
    """The catalog topics a `streams.app.create_app` app reads (the CDC topics of its maps'
    tables, ``sync.applied.*``, ``sync.control``) and writes (``sync.commands.*``,
    ``sync.dlq``), each with the partition count it must have: a CDC topic the worker's (ingest
    writes the ``versions`` changelog in the partition of the record it handles; Faust's
    ``PartitionsMismatch`` on a wider topic crashed the agent), the others any (acks of a topic
    sized unlike the gate take the gate hop; control has one; commands and dead letters are
    only written). A topic written before it exists would be made by a broker with
    ``auto.create.topics.enable`` with its own retention, not the catalog's."""
    rt = app.runtime
    partitions = rt.config.partitions
    keys = ("cdc", "applied", "control", "commands.finance", "commands.dataverse", "dlq")
    return {name: partitions if key == "cdc" else None for key in keys for name in rt.topic(key).topics}


async def _listed(admin: AIOKafkaAdminClient, wanted: Iterable[InternalTopic]) -> list[str]:
    """Names of `wanted` topics the metadata does not yet list with all their partitions."""
    wanted = list(wanted)
    described = {t["topic"]: t for t in await admin.describe_topics([t.name for t in wanted])}
    return [t.name for t in wanted
            if (d := described.get(t.name)) is None or d["error_code"] != _NO_ERROR
            or len(d["partitions"]) < t.partitions]


async def _declare(admin: AIOKafkaAdminClient, topics: list[InternalTopic], timeout_ms: int) -> None:
    existing = set(await admin.list_topics())
    present = [t for t in topics if t.name in existing]
    if present:
        described = {d["topic"]: d for d in await admin.describe_topics([t.name for t in present])}
        wrong = [f"{t.name} has {len(d['partitions'])}" for t in present
                 if (d := described.get(t.name)) is not None and d["error_code"] == _NO_ERROR
                 and len(d["partitions"]) != t.partitions]
        if wrong:
            raise TopicsNotReady(
                f"{', '.join(wrong)} partitions where this worker has {present[0].partitions} "
                "(DUALWRITE_TOPICS__PARTITIONS): its state is partitioned like its topics and "
                "cannot change in place; start it with the topics' count, or under a new --app-id")
    missing = [t for t in topics if t.name not in existing]
    if not missing:
        return
    response = await admin.create_topics(
        [NewTopic(t.name, t.partitions, t.replication, topic_configs=dict(t.config))
         for t in missing], timeout_ms=timeout_ms)
    refused = [f"{name} (error {code}{''.join(f': {m}' for m in detail[:1] if m)})"
               for name, code, *detail in response.topic_errors
               if code not in (_NO_ERROR, _TOPIC_ALREADY_EXISTS)]
    if refused:
        raise TopicsNotReady("the cluster refused to create the worker's topics: " + ", ".join(refused))
    log.info("created the worker's topics %s", ", ".join(t.name for t in missing))


async def declare_internal_topics(topics: list[InternalTopic], *, bootstrap_servers: list[str],
                                  auth: Mapping[str, Any], timeout_s: float = 60.0) -> None:
    """Create the missing ones, then wait until a metadata request lists every one of them
    with all its partitions. A cluster that cannot be reached yet is retried (a worker may start
    before its brokers); after `timeout_s` raises `TopicsNotReady` saying what is missing."""
    deadline = time.monotonic() + timeout_s
    unlisted = [t.name for t in topics]
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers,
                                    request_timeout_ms=int(timeout_s * 1000), **auth)
        try:
            await admin.start()
            await _declare(admin, topics, int(timeout_s * 1000))
            while unlisted := await _listed(admin, topics):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            else:
                return
        except KafkaError as exc:  # not reachable yet, or the metadata moved under us: again
            last_error = exc
            await asyncio.sleep(1.0)
        finally:
            await admin.close()
    why = f" (last error: {last_error!r})" if last_error else ""
    raise TopicsNotReady(
        f"the cluster's metadata does not list {', '.join(unlisted)} after {timeout_s:.0f} s"
        f"{why}: check that the brokers are up (`dualwrite kafka status`) and the worker's "
        "DUALWRITE_KAFKA__* settings")


def sized_unlike(required: Mapping[str, int | None], partitions: Mapping[str, int]) -> list[str]:
    """The topics whose partition count (by name, as described) is not the one `required`
    (pure)."""
    return [f"{name} has {partitions[name]}" for name, count in required.items()
            if count is not None and name in partitions and partitions[name] != count]


async def await_catalog_topics(required: Mapping[str, int | None], *, bootstrap_servers: list[str],
                            auth: Mapping[str, Any], timeout_s: float = 60.0) -> None:
    """Wait until the cluster lists every catalog topic the worker uses; after `timeout_s` raise
    `TopicsNotReady` naming the missing ones and the command that creates them. A topic of
    another partition count than `required` is refused at once, naming it.

    A topic missing when the group's leader assigns partitions is left out of the assignment
    ("Ignoring missing topic"), and it stays out when it appears later: a static member gets
    that assignment back on every restart, and even a dynamic one waits for a metadata refresh
    (five minutes). A map enabled without `dualwrite topics apply` would never be read. The
    worker does not create them: their partitions, retention and compaction are the catalog's,
    applied (and checked for drift) by that command. The check lists topics without naming
    them, since a metadata request that names a missing topic makes a broker with
    ``auto.create.topics.enable`` create it with its own defaults."""
    names = list(required)
    deadline = time.monotonic() + timeout_s
    missing = names
    last_error: Exception | None = None
    warned = False
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers,
                                    request_timeout_ms=int(max(timeout_s, 1.0) * 1000), **auth)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [name for name in names if name not in existing]
            if not missing:
                sized = [name for name, count in required.items() if count is not None]
                described = await admin.describe_topics(sized) if sized else []  # all present
                wrong = sized_unlike(required, {d["topic"]: len(d["partitions"]) for d in described
                                                if d["error_code"] == _NO_ERROR})
                if wrong:
                    count = next(c for c in required.values() if c is not None)
                    raise TopicsNotReady(
                        f"{', '.join(wrong[:5])}{' ...' if len(wrong) > 5 else ''} partitions where this "
                        f"worker has {count} (DUALWRITE_TOPICS__PARTITIONS): it keeps its state "
                        "partitioned like the CDC topics; give the catalog and the worker one count "
                        "(`dualwrite topics apply --check` names the drift)")
                return
            if not warned:
                log.warning("waiting for the topics this worker reads and writes: %s (created by "
                            "`dualwrite topics apply`)", ", ".join(missing))
                warned = True
        except KafkaError as exc:  # not reachable yet: again, until the deadline
            last_error = exc
        finally:
            await admin.close()
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(1.0)
    why = f" (last error: {last_error!r})" if last_error and missing == names else ""
    raise TopicsNotReady(
        f"{len(missing)} topic(s) this worker reads or writes do not exist after {timeout_s:.0f} s: "
        f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}{why}. Create them with "
        "`dualwrite topics apply` (the catalog of the enabled maps), then start the worker")
