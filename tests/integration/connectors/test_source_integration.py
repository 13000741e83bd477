"""Sources -> CDC topics on a real broker, checkpoints on a compacted topic, resume after restart;
a poisoned row and a forged checkpoint against the real emulators."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from connectors.common.kafka import KafkaConfig
from connectors.common.source import SourceSettings
from connectors.dataverse import dataverse_source
from connectors.finance import finance_source
from tests.integration.connectors.conftest import (
    create_topics,
    dataverse_conn,
    finance_conn,
    produce_raw,
    read_all,
)
from tests.support.emulators import RunningEmulator
from topics import (
    ChangeEvent,
    SourceOffset,
    SourceOffsetKey,
    decode_event,
    decode_key,
    decode_model,
    encode,
)

pytestmark = pytest.mark.integration


def events(bootstrap: str, topic: str) -> list[tuple[str, ChangeEvent | None]]:
    return [(decode_key(k).id, decode_event(v)) for k, v, _ in read_all(bootstrap, topic)]


def settings(system: str, table: str, unique: str, images: Path | None = None) -> SourceSettings:
    return SourceSettings.model_validate({
        "system": system, "tables": (table,), "poll_interval_s": 0.1,
        "offsets_topic": f"it-{unique}.offsets", "dlq_topic": f"it-{unique}.dlq",
        "topic_prefix": f"it-{unique}.", "checkpoint_table_prefix": f"{unique}.", "images_path": images})


async def run_until(engine_run, predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    stop = asyncio.Event()
    task = asyncio.create_task(engine_run(stop))
    deadline = time.monotonic() + timeout
    try:
        while not predicate():
            assert not task.done(), task.exception()
            assert time.monotonic() < deadline, "condition not reached"
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_dataverse_source_resumes_from_its_checkpoint_without_gap_or_replay(
        kafka_bootstrap: str, kafka: KafkaConfig, dataverse_emu: RunningEmulator, unique: str,
        tmp_path: Path) -> None:
    cfg = settings("dataverse", "cdm_companies", unique, tmp_path / "images.lmdb")
    topic = cfg.topic("cdm_companies")
    create_topics(kafka_bootstrap, [topic, cfg.offsets_topic, cfg.dlq_topic], compacted=(cfg.offsets_topic,))
    conn = dataverse_conn(dataverse_emu)

    # First life: snapshot of the 2 seeded companies, then one create.
    first = dataverse_source(conn, kafka, cfg)
    await first.load()
    await first.step("cdm_companies")  # snapshot
    with dataverse_emu.client() as api:
        api.post("cdm_companies", json={"cdm_companycode": "gbsi", "cdm_name": "GB"}).raise_for_status()
    await first.step("cdm_companies")
    await first.close()
    seen = events(kafka_bootstrap, topic)
    assert [e.op for _, e in seen if e] == ["r", "r", "c"]
    assert [e.source.snapshot for _, e in seen if e] == ["true", "last", "false"]

    # While stopped: an update and a delete (with its tombstone).
    gbsi = next(k for k, e in seen if e and e.after and e.after["cdm_companycode"] == "gbsi")
    with dataverse_emu.client() as api:
        api.patch(f"cdm_companies({gbsi})", json={"cdm_name": "Great Britain"}).raise_for_status()
        demf = next(k for k, e in seen if e and e.after and e.after["cdm_companycode"] == "demf")
        api.delete(f"cdm_companies({demf})").raise_for_status()

    # Second life: resumes from the checkpoint on Kafka (nothing on disk), runs its loop.
    second = dataverse_source(conn, kafka, cfg)
    await run_until(second.run, lambda: len(events(kafka_bootstrap, topic)) >= 6)
    await asyncio.sleep(0.5)
    seen = events(kafka_bootstrap, topic)
    tail = [(k, e.op if e else None) for k, e in seen[3:]]
    assert tail == [(gbsi, "u"), (demf, "d"), (demf, None)]  # no snapshot again, no re-emission
    # Full before images across the restart (Debezium consumers need them): the update's is
    # the create's image, the delete's the snapshot's.
    first_life = {k: e.after for k, e in seen[:3] if e}
    updated, deleted = seen[3][1], seen[4][1]
    assert updated is not None and updated.before == first_life[gbsi]
    assert deleted is not None and deleted.before == first_life[demf] and deleted.before["cdm_companycode"] == "demf"
    versions = [int(e.source.version) for _, e in seen if e and e.op != "r"]
    assert versions == sorted(versions)
    offsets = read_all(kafka_bootstrap, cfg.offsets_topic)
    latest = decode_model(SourceOffset, offsets[-1][1])
    assert latest.snapshot_done and latest.table == f"{unique}.cdm_companies" and "$deltatoken=" in latest.position


async def test_finance_source_snapshot_then_stream_then_resume(
        kafka_bootstrap: str, kafka: KafkaConfig, finance_emu: RunningEmulator, unique: str,
        tmp_path: Path) -> None:
    cfg = settings("finance", "CustomersV3", unique, tmp_path / "images.lmdb")
    topic = cfg.topic("CustomersV3")
    assert topic == f"it-{unique}.finance.cdc.customersv3"
    create_topics(kafka_bootstrap, [topic, cfg.offsets_topic, cfg.dlq_topic], compacted=(cfg.offsets_topic,))
    conn = finance_conn(finance_emu)
    body = {"dataAreaId": "usmf", "CustomerAccount": f"I-{unique[:6]}", "Name": "One"}

    first = finance_source(conn, kafka, cfg)
    await first.load()
    await first.step("CustomersV3")
    snapshot = events(kafka_bootstrap, topic)
    assert snapshot and snapshot[-1][1] is not None and snapshot[-1][1].source.snapshot == "last"
    with finance_emu.client() as api:
        api.post("CustomersV3", json=body).raise_for_status()
    await first.step("CustomersV3")
    await first.close()
    assert len(events(kafka_bootstrap, topic)) == len(snapshot) + 1

    with finance_emu.client() as api:
        key = f"CustomersV3(dataAreaId='usmf',CustomerAccount='{body['CustomerAccount']}')"
        api.patch(key, json={"Name": "Two"}).raise_for_status()
    second = finance_source(conn, kafka, cfg)
    await run_until(second.run, lambda: len(events(kafka_bootstrap, topic)) >= len(snapshot) + 2)
    await asyncio.sleep(0.5)
    seen = events(kafka_bootstrap, topic)
    assert len(seen) == len(snapshot) + 2
    (k1, created), (k2, updated) = seen[-2:]
    assert k1 == k2 == f"usmf|{body['CustomerAccount']}"
    assert created is not None and updated is not None
    assert (created.op, updated.op) == ("c", "u") and updated.after is not None and updated.after["Name"] == "Two"
    assert updated.before == created.after  # the image from before the restart


async def test_finance_source_runs_many_entities_on_one_feed(
        kafka_bootstrap: str, kafka: KafkaConfig, finance_emu: RunningEmulator, unique: str) -> None:
    tables = ("CustomersV3", "VendorsV2", "LegalEntities")
    cfg = settings("finance", tables[0], unique).model_copy(update={"tables": tables})
    topics = [cfg.topic(t) for t in tables]
    create_topics(kafka_bootstrap, [*topics, cfg.offsets_topic, cfg.dlq_topic], compacted=(cfg.offsets_topic,))
    engine = finance_source(finance_conn(finance_emu), kafka, cfg)
    counts = {t: 0 for t in topics}

    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    try:
        deadline = time.monotonic() + 30
        while len(engine.positions) < len(tables):  # every snapshot checkpointed
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.1)
        for t in topics:
            counts[t] = len(events(kafka_bootstrap, t))
        with finance_emu.client() as api:
            api.post("CustomersV3", json={"dataAreaId": "usmf", "CustomerAccount": f"MC{unique[:6]}"}).raise_for_status()
            api.post("VendorsV2", json={"dataAreaId": "usmf", "VendorAccountNumber": f"MV{unique[:6]}"}).raise_for_status()
        while not all(len(events(kafka_bootstrap, t)) == counts[t] + 1 for t in topics[:2]):
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert len(events(kafka_bootstrap, topics[2])) == counts[topics[2]]  # untouched entity: nothing new
    (_, vendor), = events(kafka_bootstrap, topics[1])[-1:]
    assert vendor is not None and vendor.op == "c" and vendor.source.table == "VendorsV2"


async def test_a_poisoned_row_is_a_capture_dead_letter_while_its_page_and_another_table_flow(
        kafka_bootstrap: str, finance_emu: RunningEmulator, unique: str) -> None:
    """A customer whose event is over the producer's message.max.bytes (configured down to
    librdkafka's minimum, 1000 bytes, so the emulator's own length limits allow such a row):
    it alone goes to the DLQ; the other rows of its snapshot page, later changes of its table and
    another table on the same feed arrive."""
    tables = ("CustomersV3", "VendorsV2")
    cfg = settings("finance", tables[0], unique).model_copy(update={"tables": tables})
    customers, vendors = cfg.topic(tables[0]), cfg.topic(tables[1])
    create_topics(kafka_bootstrap, [customers, vendors, cfg.offsets_topic, cfg.dlq_topic],
                  compacted=(cfg.offsets_topic,))
    small = KafkaConfig(bootstrap_servers=kafka_bootstrap, client={"message.max.bytes": "1000"})
    wide = "\U0001d11e"  # 4 bytes in UTF-8: 100 of them fit the 100-character Name
    poisoned = f"PZ-{unique[:6]}"
    with finance_emu.client() as api:
        api.post("CustomersV3", json={"dataAreaId": "usmf", "CustomerAccount": poisoned, "Name": wide * 100,
                                      "PartyNumber": wide * 40}).raise_for_status()
        api.post("CustomersV3", json={"dataAreaId": "usmf", "CustomerAccount": f"OK-{unique[:6]}",
                                      "Name": "Plain"}).raise_for_status()
        expected = {f"{r['dataAreaId']}|{r['CustomerAccount']}" for r in
                    api.get("CustomersV3", params={"cross-company": "true"}).json()["value"]}

    engine = finance_source(finance_conn(finance_emu), small, cfg)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    try:
        deadline = time.monotonic() + 60
        while len(engine.positions) < len(tables):  # both snapshots checkpointed
            assert time.monotonic() < deadline and not task.done(), task.exception() if task.done() else ""
            await asyncio.sleep(0.1)
        with finance_emu.client() as api:
            api.post("VendorsV2", json={"dataAreaId": "usmf", "VendorAccountNumber": f"PV{unique[:6]}"}).raise_for_status()
            api.post("CustomersV3", json={"dataAreaId": "usmf", "CustomerAccount": f"AF-{unique[:6]}"}).raise_for_status()
        while not (any(k == f"usmf|PV{unique[:6]}" for k, _ in events(kafka_bootstrap, vendors))
                   and any(k == f"usmf|AF-{unique[:6]}" for k, _ in events(kafka_bootstrap, customers))):
            assert time.monotonic() < deadline and not task.done(), task.exception() if task.done() else ""
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)

    captured = {k for k, e in events(kafka_bootstrap, customers) if e is not None and e.op == "r"}
    assert captured == expected - {f"usmf|{poisoned}"}  # the rest of its page arrived
    (letter,) = read_all(kafka_bootstrap, cfg.dlq_topic)
    key, value, headers = letter
    assert headers["dlq.stage"] == b"capture" and headers["dlq.error.class"] == b"OversizedRow"
    assert headers["dlq.original.topic"] == customers.encode()
    assert int(headers["dlq.payload.truncated"]) > 900  # cut to fit, and says so
    assert decode_key(key).id == f"usmf|{poisoned}" and value is not None and value.startswith(b'{"before":null')


async def test_a_forged_checkpoint_linking_elsewhere_is_refused_and_the_table_snapshots_afresh(
        kafka_bootstrap: str, kafka: KafkaConfig, dataverse_emu: RunningEmulator, unique: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """Anyone who can produce to sync.source-offsets can write a delta link: one naming another
    port of the same host must never be requested (the token would go with it)."""
    cfg = settings("dataverse", "cdm_companies", unique)
    topic = cfg.topic("cdm_companies")
    create_topics(kafka_bootstrap, [topic, cfg.offsets_topic, cfg.dlq_topic], compacted=(cfg.offsets_topic,))
    visits: list[bytes] = []

    async def trap(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        visits.append(await reader.read(4096))
        writer.close()

    server = await asyncio.start_server(trap, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    forged = SourceOffset(system="dataverse", table=f"{unique}.cdm_companies", snapshot_done=True, ts_ms=1,
                          position=f"http://127.0.0.1:{port}/api/data/v9.2/cdm_companies?$deltatoken=1!01/01/2026")
    produce_raw(kafka_bootstrap, cfg.offsets_topic,
                [(encode(SourceOffsetKey(system="dataverse", table=forged.table)), encode(forged))])
    try:
        engine = dataverse_source(dataverse_conn(dataverse_emu), kafka, cfg)
        await run_until(engine.run, lambda: any(e and e.source.snapshot == "last"
                                                for _, e in events(kafka_bootstrap, topic)))
    finally:
        server.close()
        await server.wait_closed()
    assert visits == []  # not a byte, let alone the token
    assert "checkpoint refused" in caplog.text and f"127.0.0.1:{port}" in caplog.text
    latest = decode_model(SourceOffset, read_all(kafka_bootstrap, cfg.offsets_topic)[-1][1])
    assert latest.position.startswith(dataverse_emu.api_url + "/") and "$deltatoken=" in latest.position
