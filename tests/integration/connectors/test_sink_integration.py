"""Sinks: commands topic -> emulator -> acks on a real broker; replay costs zero requests.

Requests are counted with the connector's own Prometheus counter
``dualwrite_connector_requests{system=...}`` (every API request the sink sends, whatever its
status; the emulators have no request-count endpoint). Token requests are not API requests.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer
from prometheus_client import REGISTRY

from connectors.common.kafka import KafkaConfig
from connectors.common.sink import SinkEngine, SinkSettings
from connectors.dataverse import dataverse_sink
from connectors.finance import finance_sink
from tests.integration.connectors.conftest import (
    create_topics,
    dataverse_conn,
    finance_conn,
    produce_raw,
    read_all,
)
from tests.support.emulators import RunningEmulator
from topics import Command, ack_partition, decode_ack, encode

pytestmark = pytest.mark.integration


def requests_sent(system: str) -> float:
    total = 0.0
    for family in REGISTRY.collect():
        if family.name == "dualwrite_connector_requests":
            total += sum(s.value for s in family.samples
                         if s.name.endswith("_total") and s.labels.get("system") == system)
    return total


def sink_settings(target: str, unique: str, group: str | None = None) -> SinkSettings:
    return SinkSettings.model_validate({
        "target": target, "commands_topic": f"it-{unique}.commands", "applied_topic": f"it-{unique}.applied",
        "dlq_topic": f"it-{unique}.dlq", "group_id": group or f"it-{unique}-sink",
        "flush_interval_s": 0.2, "batch_size": 20, "retry_pause_s": 0.1})


def customer(account: str, version: int, name: str, op: str = "upsert", **extra: object) -> Command:
    fields = {"Name": name, "CustomerGroupId": "30", "SalesCurrencyCode": "USD", **extra}
    return Command.model_validate({
        "command_id": f"customers:{account}:{version}", "map": "customers", "target": "finance",
        "entity": "CustomersV3", "key": {"dataAreaId": "usmf", "CustomerAccount": account}, "op": op,
        "fields": fields if op == "upsert" else {}, "fingerprint": f"{name}|{op}",
        "source": {"system": "dataverse", "table": "accounts", "id": f"id-{account}", "version": version,
                   "ts_ms": 1}})


def records(commands: list[Command]) -> list[tuple[bytes | None, bytes | None]]:
    return [(c.record_key.encode(), encode(c)) for c in commands]


async def drain(engine: SinkEngine, expect: int, timeout: float = 30.0) -> int:
    """Step until ``expect`` records were consumed; returns how many were."""
    consumed = 0
    deadline = time.monotonic() + timeout
    while consumed < expect:
        assert time.monotonic() < deadline, f"consumed {consumed} of {expect}"
        consumed += await engine.step()
    return consumed


def fo_row(emu: RunningEmulator, account: str) -> dict[str, object] | None:
    with emu.client() as api:
        r = api.get(f"CustomersV3(dataAreaId='usmf',CustomerAccount='{account}')")
    return None if r.status_code == 404 else dict(r.json())


async def test_finance_sink_applies_acks_commits_and_replays_with_zero_requests(
        kafka_bootstrap: str, kafka: KafkaConfig, finance_emu: RunningEmulator, unique: str) -> None:
    cfg = sink_settings("finance", unique)
    create_topics(kafka_bootstrap, [cfg.commands, cfg.applied, cfg.dlq_topic], partitions=3)
    a, b, c = (f"K{unique[:5]}{n}" for n in "abc")
    commands = [customer(a, 1, "A1"), customer(b, 1, "B1"), customer(a, 2, "A2"),  # A coalesces to v2
                customer(c, 1, "C1"), customer(c, 2, "C1", op="delete")]          # delete supersedes
    produce_raw(kafka_bootstrap, cfg.commands, records(commands))

    engine = finance_sink(finance_conn(finance_emu), kafka, cfg)
    await engine.start()
    await drain(engine, len(commands))
    await engine.close()
    row_a, row_b = fo_row(finance_emu, a), fo_row(finance_emu, b)
    assert row_a is not None and row_a["Name"] == "A2" and row_b is not None and row_b["Name"] == "B1"
    assert fo_row(finance_emu, c) is None
    acks = {k.decode(): decode_ack(v) for k, v, _ in read_all(kafka_bootstrap, cfg.applied) if k and v}
    assert acks[customer(a, 2, "A2").record_key].source_version == 2
    assert acks[customer(a, 2, "A2").record_key].target_id == str(row_a["RecId"])
    assert acks[customer(c, 2, "C1", op="delete").record_key].op == "delete"

    # Same group after a restart: offsets were committed, nothing is consumed again.
    again = finance_sink(finance_conn(finance_emu), kafka, cfg)
    await again.start()
    assert sum([await again.step() for _ in range(5)]) == 0
    await again.close()

    # Replay the whole topic with a fresh group: every command already applied -> zero requests.
    replay_cfg = sink_settings("finance", unique, group=f"it-{unique}-replay")
    replay = finance_sink(finance_conn(finance_emu), kafka, replay_cfg)
    await replay.start()
    before = requests_sent("finance")
    await drain(replay, len(commands))
    assert requests_sent("finance") == before
    await replay.close()
    assert len(read_all(kafka_bootstrap, cfg.applied)) == len(acks)  # and no new acks


def ack_partitions(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> dict[str, int]:
    """Record key -> the partition its ack was published to, once ``expected`` keys were read."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"placed-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        out: dict[str, int] = {}
        deadline = time.monotonic() + timeout
        while len(out) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(100, timeout=1):
                if not msg.error() and msg.key():
                    out[msg.key().decode()] = msg.partition()
        return out
    finally:
        consumer.close()


async def test_the_sink_publishes_each_ack_in_the_partition_of_its_rows_gate_key(
        kafka_bootstrap: str, kafka: KafkaConfig, finance_emu: RunningEmulator, unique: str) -> None:
    """The worker that owns a row's gate state reads the row's acks and handles them in place
    (`topics.ack_partition`); librdkafka's own partitioner would scatter them elsewhere."""
    cfg = sink_settings("finance", unique)
    create_topics(kafka_bootstrap, [cfg.commands, cfg.applied, cfg.dlq_topic], partitions=3)
    commands = [customer(f"P{unique[:5]}{n:02d}", 1, f"N{n}") for n in range(12)]
    produce_raw(kafka_bootstrap, cfg.commands, records(commands))
    engine = finance_sink(finance_conn(finance_emu), kafka, cfg)
    await engine.start()
    await drain(engine, len(commands))
    await engine.close()
    placed = ack_partitions(kafka_bootstrap, cfg.applied, len(commands))
    assert set(placed) == {c.record_key for c in commands}
    assert placed == {key: ack_partition(key, 3) for key in placed}
    assert len(set(placed.values())) > 1  # the keys do spread: the placement is not trivially one partition


async def test_finance_sink_dead_letters_bad_commands_and_keeps_going(
        kafka_bootstrap: str, kafka: KafkaConfig, finance_emu: RunningEmulator, unique: str) -> None:
    cfg = sink_settings("finance", unique)
    create_topics(kafka_bootstrap, [cfg.commands, cfg.applied, cfg.dlq_topic])
    good = customer(f"G{unique[:6]}", 1, "Good")
    bad = customer(f"H{unique[:6]}", 1, "Bad", NoSuchField="x")
    produce_raw(kafka_bootstrap, cfg.commands, [(b"junk", b"{not json"), *records([bad, good])])

    engine = finance_sink(finance_conn(finance_emu), kafka, cfg)
    await engine.start()
    await drain(engine, 3)
    await engine.close()
    assert fo_row(finance_emu, good.key["CustomerAccount"]) is not None  # type: ignore[arg-type]
    dead = read_all(kafka_bootstrap, cfg.dlq_topic)
    assert len(dead) == 2
    (undecodable, rejected) = sorted(dead, key=lambda d: int(d[2]["dlq.original.offset"]))
    assert undecodable[1] == b"{not json" and undecodable[2]["dlq.stage"] == b"sink"
    assert undecodable[2]["dlq.error.class"].startswith(b"DecodeError")
    headers = rejected[2]
    assert rejected[1] == encode(bad)
    assert headers["dlq.stage"] == b"sink" and headers["dlq.map"] == b"customers"
    assert headers["dlq.http.status"] == b"400" and headers["dlq.error.class"] == b"Http400"
    assert b"NoSuchField" in headers["dlq.error.message"]
    assert headers["dlq.original.topic"] == cfg.commands.encode()
    assert len(read_all(kafka_bootstrap, cfg.applied)) == 1


async def test_dataverse_sink_upserts_and_acks_with_guid(
        kafka_bootstrap: str, kafka: KafkaConfig, dataverse_emu: RunningEmulator, unique: str) -> None:
    cfg = sink_settings("dataverse", unique)
    create_topics(kafka_bootstrap, [cfg.commands, cfg.applied, cfg.dlq_topic])
    with dataverse_emu.client() as api:
        usmf = api.get("cdm_companies", params={"$filter": "cdm_companycode eq 'usmf'"}).json()["value"][0]
    number = f"D{unique[:6]}"
    cmd = Command.model_validate({
        "command_id": f"customers:{number}:1", "map": "customers", "target": "dataverse", "entity": "accounts",
        "key": {"accountnumber": number, "_msdyn_company_value": usmf["cdm_companyid"]}, "op": "upsert",
        "fields": {"name": "Tailspin", "msdyn_company@odata.bind": "/cdm_companies(cdm_companycode='usmf')"},
        "fingerprint": "f1", "source": {"system": "finance", "table": "CustomersV3",
                                         "id": f"usmf|{number}", "version": 7, "ts_ms": 1},
        "tx_size": None})
    produce_raw(kafka_bootstrap, cfg.commands, records([cmd]))
    engine = dataverse_sink(dataverse_conn(dataverse_emu), kafka, cfg)
    await engine.start()
    await drain(engine, 1)
    await engine.close()
    with dataverse_emu.client() as api:
        (row,) = api.get("accounts", params={"$filter": f"accountnumber eq '{number}'"}).json()["value"]
    (ack,) = [decode_ack(v) for _, v, _ in read_all(kafka_bootstrap, cfg.applied) if v]
    assert ack.target_id == row["accountid"] and ack.source_version == 7 and ack.etag


async def test_source_transaction_spread_over_partitions_lands_as_one_change_set(
        kafka_bootstrap: str, kafka: KafkaConfig, finance_emu: RunningEmulator, unique: str) -> None:
    cfg = sink_settings("finance", unique)
    create_topics(kafka_bootstrap, [cfg.commands, cfg.applied, cfg.dlq_topic], partitions=3)
    accounts = [f"T{unique[:5]}{n}" for n in range(4)]
    tx = [customer(a, 1, f"Tx {a}").model_copy(update={"tx_size": 4}) for a in accounts]
    tx = [c.model_copy(update={"source": c.source.model_copy(update={"txid": "dv-tx-1"})}) for c in tx]
    produce_raw(kafka_bootstrap, cfg.commands, records(tx))
    engine = finance_sink(finance_conn(finance_emu), kafka, cfg)
    await engine.start()
    await drain(engine, len(tx))
    await engine.close()
    with finance_emu.client() as api:
        feed = api.get("ChangeFeed", params={"since": "0", "entities": "CustomersV3", "top": "10000"}).json()
    txids = {e["txid"] for e in feed["value"] if e["key"]["CustomerAccount"] in accounts}
    assert len([e for e in feed["value"] if e["key"]["CustomerAccount"] in accounts]) == 4
    assert len(txids) == 1  # all four rows committed by one target transaction


async def test_sink_waits_out_a_429_storm_and_applies_everything(
        kafka_bootstrap: str, kafka: KafkaConfig, finance_emu: RunningEmulator, unique: str) -> None:
    cfg = sink_settings("finance", unique)
    create_topics(kafka_bootstrap, [cfg.commands, cfg.applied, cfg.dlq_topic])
    commands = [customer(f"S{unique[:5]}{n}", 1, "Storm") for n in range(5)]
    produce_raw(kafka_bootstrap, cfg.commands, records(commands))
    engine = finance_sink(finance_conn(finance_emu), kafka, cfg)
    await engine.start()
    with finance_emu.admin() as admin:
        admin.put("/faults", json={"throttle_storm_seconds": 2.0, "throttle_retry_after_seconds": 1}).raise_for_status()
    try:
        started = time.monotonic()
        await drain(engine, len(commands))
        elapsed = time.monotonic() - started
    finally:
        with finance_emu.admin() as admin:
            admin.put("/faults", json={"throttle_storm_seconds": 0.0})
        await engine.close()
    assert elapsed >= 2.0  # nothing got through before the storm ended
    assert all(fo_row(finance_emu, c.key["CustomerAccount"]) for c in commands)  # type: ignore[arg-type]
    assert len(read_all(kafka_bootstrap, cfg.applied)) == len(commands)
    assert read_all(kafka_bootstrap, cfg.dlq_topic) == []


async def test_crash_after_acks_before_commit_redelivers_at_zero_cost(
        kafka_bootstrap: str, kafka: KafkaConfig, finance_emu: RunningEmulator, unique: str) -> None:
    """The window is written and acked, then the process dies before committing offsets."""
    cfg = sink_settings("finance", unique)
    create_topics(kafka_bootstrap, [cfg.commands, cfg.applied, cfg.dlq_topic])
    commands = [customer(f"Z{unique[:5]}{n}", 1, "Crash") for n in range(3)]
    produce_raw(kafka_bootstrap, cfg.commands, records(commands))

    class Crash(Exception):
        pass

    seen: list[object] = []

    async def die(ready: list[object]) -> None:
        # Commit nothing; die once the whole topic was written and acked (a window may be empty
        # or hold only some partitions' records, so count them instead of dying at once).
        seen.extend(ready)
        if len(seen) >= len(commands):
            raise Crash

    doomed = finance_sink(finance_conn(finance_emu), kafka, cfg)
    await doomed.start()
    doomed._commit = die  # type: ignore[method-assign,assignment]
    with pytest.raises(Crash):
        await drain(doomed, len(commands))
    await doomed.close()
    assert len(read_all(kafka_bootstrap, cfg.applied)) == len(commands)

    before = requests_sent("finance")
    restarted = finance_sink(finance_conn(finance_emu), kafka, cfg)  # same group: redelivered
    await restarted.start()
    await drain(restarted, len(commands))
    await restarted.close()
    assert requests_sent("finance") == before
    again = finance_sink(finance_conn(finance_emu), kafka, cfg)
    await again.start()
    assert sum([await again.step() for _ in range(3)]) == 0  # committed this time
    await again.close()


async def test_a_flood_of_rejections_stops_the_sink_instead_of_draining_into_the_dlq(
        kafka_bootstrap: str, kafka: KafkaConfig, finance_emu: RunningEmulator, unique: str) -> None:
    from connectors.common.sink import DlqFlood

    cfg = sink_settings("finance", unique).model_copy(update={"dlq_flood_limit": 3})
    create_topics(kafka_bootstrap, [cfg.commands, cfg.applied, cfg.dlq_topic])
    bad = [customer(f"W{unique[:5]}{n}", 1, "Bad", NoSuchField=n) for n in range(4)]
    produce_raw(kafka_bootstrap, cfg.commands, records(bad))
    engine = finance_sink(finance_conn(finance_emu), kafka, cfg)
    await engine.start()
    with pytest.raises(DlqFlood):
        await drain(engine, len(bad))
    await engine.close()
    assert read_all(kafka_bootstrap, cfg.dlq_topic) == []  # nothing drained, nothing committed

    relaxed = finance_sink(finance_conn(finance_emu), kafka, cfg.model_copy(update={"dlq_flood_limit": 0}))
    await relaxed.start()
    await drain(relaxed, len(bad))  # redelivered: the window was not committed
    await relaxed.close()
    assert len(read_all(kafka_bootstrap, cfg.dlq_topic)) == len(bad)


async def test_finance_sink_survives_hostile_keys_and_dead_letters_what_it_attempted(
        kafka_bootstrap: str, kafka: KafkaConfig, finance_emu: RunningEmulator, unique: str) -> None:
    """Issue 8: non-Latin-1 and %-keys land in one $batch on exactly their rows, a key with a
    line break is dead-lettered as InvalidKey before any request, and a rejected coalesced write
    is dead-lettered as the merged command it was; the window is consumed, nothing crashes."""
    cfg = sink_settings("finance", unique)
    create_topics(kafka_bootstrap, [cfg.commands, cfg.applied, cfg.dlq_topic])
    tag = unique[:4]
    decoy = customer(f"{tag}-1", 1, "decoy")
    hostile = [customer(f"{tag}Łódź-1", 1, "lodz"), customer(f"{tag}€", 1, "euro"),
               customer(f"{tag}%2D1", 1, "percent"), customer(f"{tag}A#B?x=1/", 1, "marks")]
    injected = customer(f"{tag}\r\nMSCRM.CallerID: x", 1, "injected")
    merged_v1 = customer(f"M{tag}", 1, "first", NoSuchField="x")
    merged_v2 = customer(f"M{tag}", 2, "second")
    produce_raw(kafka_bootstrap, cfg.commands, records([decoy]))
    engine = finance_sink(finance_conn(finance_emu), kafka, cfg)
    await engine.start()
    await drain(engine, 1)
    produce_raw(kafka_bootstrap, cfg.commands, records([*hostile, injected, merged_v1, merged_v2]))
    await drain(engine, len(hostile) + 3)
    await engine.close()

    with finance_emu.client() as api:
        def named(account: str) -> list[str]:
            flt = "CustomerAccount eq '" + account.replace("'", "''") + "'"
            return [str(r["Name"]) for r in api.get("CustomersV3", params={"$filter": flt}).json()["value"]]
        for cmd in hostile:
            assert named(str(cmd.key["CustomerAccount"])) == [cmd.fields["Name"]]
        assert named(f"{tag}-1") == ["decoy"]
    dead = {d[2]["dlq.error.class"]: d for d in read_all(kafka_bootstrap, cfg.dlq_topic)}
    assert set(dead) == {b"InvalidKey", b"Http400"}
    assert dead[b"InvalidKey"][1] == encode(injected)
    letter = dead[b"Http400"]
    attempted = Command.model_validate_json(letter[1] or b"")
    assert attempted.fields["Name"] == "second" and attempted.fields["NoSuchField"] == "x"
    assert letter[2]["dlq.value"] == b"merged-command"
    assert letter[2]["dlq.superseded"] == merged_v1.command_id.encode()


def finance_command(entity: str, key: dict[str, str], version: int, op: str = "upsert",
                    **fields: object) -> Command:
    record = ",".join(f"{v}" for v in key.values())
    return Command.model_validate({
        "command_id": f"{entity}:{record}:{version}", "map": entity.lower(), "target": "finance",
        "entity": entity, "key": key, "op": op, "fields": fields if op == "upsert" else {},
        "fingerprint": f"{entity}|{record}|{version}",
        "source": {"system": "dataverse", "table": entity.lower(), "id": f"id-{record}",
                   "version": version, "ts_ms": 1}})


async def test_a_delete_refused_while_its_row_is_referenced_waits_for_the_referencing_rows_delete(
        kafka_bootstrap: str, kafka: KafkaConfig, finance_emu: RunningEmulator, unique: str) -> None:
    """Chaos run of issue 9: a parent's delete reached the sink a moment before its child's and
    was retried in place until the DLQ, while the child's delete queued behind it. Now the
    refused delete waits for a later window and the child's delete goes first."""
    cfg = sink_settings("finance", unique)
    create_topics(kafka_bootstrap, [cfg.commands, cfg.applied, cfg.dlq_topic], partitions=1)
    contract = {"dataAreaId": "usmf", "ProjectContractId": f"PC{unique[:8]}"}
    project = {"dataAreaId": "usmf", "ProjectId": f"P{unique[:8]}"}
    made = [finance_command("ProjectContractHeaders", contract, 1, Name="Contract",
                            CustomerAccountNumber="US-001", SalesCurrencyCode="USD"),
            finance_command("ProjectsV2", project, 1, ProjectName="Project", CustomerAccountNumber="US-001",
                            ProjectContractId=contract["ProjectContractId"], ProjectStage="InProcess",
                            ProjectedStartDate="2026-01-01")]
    engine = finance_sink(finance_conn(finance_emu), kafka, cfg)
    await engine.start()
    produce_raw(kafka_bootstrap, cfg.commands, records(made))
    await drain(engine, 2)
    produce_raw(kafka_bootstrap, cfg.commands, records([finance_command("ProjectContractHeaders", contract, 2,
                                                                        op="delete")]))
    await drain(engine, 1)  # refused: the project still references the contract
    produce_raw(kafka_bootstrap, cfg.commands, records([finance_command("ProjectsV2", project, 2, op="delete")]))
    await drain(engine, 1)
    deadline = time.monotonic() + 30
    while len(read_all(kafka_bootstrap, cfg.applied)) < 4 and time.monotonic() < deadline:
        await engine.step()
    await engine.close()
    assert read_all(kafka_bootstrap, cfg.dlq_topic) == []
    acks = [decode_ack(v) for _, v, _ in read_all(kafka_bootstrap, cfg.applied) if v]
    assert [(a.entity, a.op) for a in acks][-2:] == [("ProjectsV2", "delete"), ("ProjectContractHeaders", "delete")]
    with finance_emu.client() as api:
        gone = api.get(f"ProjectContractHeaders(dataAreaId='usmf',ProjectContractId='{contract['ProjectContractId']}')")
    assert gone.status_code == 404
