"""The Finance sink writing one source transaction larger than a change set may be (issue 11),
on a real broker against the Finance emulator, which refuses a ``$batch`` of more than 1,000
requests (``EmulatorConfig.max_batch_requests``) as Dataverse does.

2,500 commands of one transaction (as the worker publishes a big confirmation: ``tx_size``,
``tx_order``) go as change sets of at most ``SinkSettings.max_change_set`` (default 1,000), in
the transaction's order, each one Finance transaction; nothing is refused, every write is acked
once, and a replay costs zero requests.
"""

from __future__ import annotations

import pytest

from connectors.common.kafka import KafkaConfig
from connectors.finance import finance_sink
from tests.integration.connectors.conftest import create_topics, finance_conn, produce_raw, read_all
from tests.integration.connectors.test_sink_integration import (
    customer,
    drain,
    records,
    requests_sent,
    sink_settings,
)
from tests.support.emulators import RunningEmulator
from topics import decode_ack

pytestmark = pytest.mark.integration

SIZE = 2500


def feed_by_tx(emu: RunningEmulator, accounts: set[str]) -> list[list[str]]:
    """The accounts Finance's change feed shows written, grouped per Finance transaction."""
    since, by_tx = 0, dict[str, list[str]]()
    with emu.client() as api:
        while True:
            body = api.get("ChangeFeed", params={"since": since, "top": 10000, "entities": "CustomersV3"}).json()
            for entry in sorted(body["value"], key=lambda e: int(e["version"])):
                if entry["key"]["CustomerAccount"] in accounts:
                    by_tx.setdefault(entry["txid"], []).append(entry["key"]["CustomerAccount"])
            if int(body["watermark"]) == since:
                return list(by_tx.values())
            since = int(body["watermark"])


async def test_a_transaction_above_the_cap_lands_in_ordered_change_sets_within_it(
        kafka_bootstrap: str, kafka: KafkaConfig, finance_emu: RunningEmulator, unique: str) -> None:
    cfg = sink_settings("finance", unique).model_copy(update={"tx_wait_s": 300.0})
    assert cfg.max_change_set == 1000
    create_topics(kafka_bootstrap, [cfg.commands, cfg.applied, cfg.dlq_topic], partitions=3)
    accounts = [f"X{unique[:5]}{i:04d}" for i in range(SIZE)]
    tx = {"txid": f"tx-{unique}"}
    commands = [customer(a, 1, f"Big {a}").model_copy(update={
        "source": customer(a, 1, "").source.model_copy(update=tx), "tx_size": SIZE, "tx_order": i})
        for i, a in enumerate(accounts, 1)]
    produce_raw(kafka_bootstrap, cfg.commands, records(commands))

    engine = finance_sink(finance_conn(finance_emu), kafka, cfg)
    await engine.start()
    await drain(engine, SIZE, timeout=300.0)
    await engine.close()

    assert read_all(kafka_bootstrap, cfg.dlq_topic) == []  # nothing refused (a too large $batch is)
    assert feed_by_tx(finance_emu, set(accounts)) == [accounts[0:1000], accounts[1000:2000], accounts[2000:]]
    acks = [str(decode_ack(v).key["CustomerAccount"]) for _, v, _ in read_all(kafka_bootstrap, cfg.applied) if v]
    assert sorted(acks) == accounts  # each write acked once

    replay = finance_sink(finance_conn(finance_emu), kafka,
                          cfg.model_copy(update={"group_id": f"it-{unique}-replay"}))
    await replay.start()
    before = requests_sent("finance")
    await drain(replay, SIZE, timeout=300.0)
    assert requests_sent("finance") == before
    await replay.close()
