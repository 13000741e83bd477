"""`dualwrite source|sink ...` as real processes: settings from the environment, SIGTERM stops
them cleanly. Topic names are redirected to unique ones through a tiny driver, so the test never
touches the shared default topics of the broker it runs against."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.connectors.conftest import create_topics, produce_raw, read_all
from tests.support.emulators import RunningEmulator
from topics import Command, decode_ack, encode

pytestmark = pytest.mark.integration

DRIVER = """
import sys
import dualwrite.commands.connectors as cli
prefix, kind = sys.argv[1], sys.argv[2]
if kind == "source":
    original = cli.SourceSettings
    cli.SourceSettings = lambda **kw: original(**kw, topic_prefix=prefix, offsets_topic=prefix + "offsets",
                                              dlq_topic=prefix + "dlq", checkpoint_table_prefix=prefix)
    cli.source_app(sys.argv[3:])
else:
    original = cli.SinkSettings
    cli.SinkSettings = lambda **kw: original(**kw, commands_topic=prefix + "commands",
                                            applied_topic=prefix + "applied", dlq_topic=prefix + "dlq")
    cli.sink_app(sys.argv[3:])
"""


def launch(prefix: str, kind: str, args: list[str], emu: RunningEmulator, bootstrap: str, log: Path) -> subprocess.Popen[bytes]:
    system = emu.kind.upper()
    env = {**os.environ, "DUALWRITE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
           f"DUALWRITE_{system}__URL": emu.base_url, f"DUALWRITE_{system}__TOKEN_URL": emu.token_url,
           f"DUALWRITE_{system}__CLIENT_ID": emu.client_id,
           f"DUALWRITE_{system}__CLIENT_SECRET": emu.client_secret,
           f"DUALWRITE_{system}__SOURCE_CLIENT_ID": emu.client_id,
           "DUALWRITE_STATE_DIR": str(log.parent / "state")}
    return subprocess.Popen([sys.executable, "-c", DRIVER, prefix, kind, *args], env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=Path(__file__).parents[3])


def wait_for(predicate, proc: subprocess.Popen[bytes], log: Path, timeout: float = 40.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.3)


def stop(proc: subprocess.Popen[bytes], log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(20) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()


def customer_command(account: str, name: str) -> Command:
    """An upsert of one Finance customer, as the worker would send it."""
    return Command.model_validate({
        "command_id": f"customers:{account}:1", "map": "customers", "target": "finance",
        "entity": "CustomersV3", "key": {"dataAreaId": "usmf", "CustomerAccount": account}, "op": "upsert",
        "fields": {"Name": name}, "fingerprint": "f",
        "source": {"system": "dataverse", "table": "accounts", "id": account, "version": 1, "ts_ms": 1}})


def test_source_command_runs_from_settings_and_stops_on_sigterm(
        kafka_bootstrap: str, dataverse_emu: RunningEmulator, unique: str, tmp_path: Path) -> None:
    prefix = f"cli-{unique}."
    topic = f"{prefix}dataverse.cdc.cdm_companies"
    create_topics(kafka_bootstrap, [topic, prefix + "offsets", prefix + "dlq"], compacted=(prefix + "offsets",))
    log = tmp_path / "source.log"
    proc = launch(prefix, "source", ["dataverse", "--table", "cdm_companies", "--poll-interval", "0.2"],
                  dataverse_emu, kafka_bootstrap, log)
    wait_for(lambda: len(read_all(kafka_bootstrap, topic)) >= 2, proc, log)  # the seeded companies
    stop(proc, log)
    assert dataverse_emu.client_secret not in log.read_text()


def test_sink_command_applies_commands_and_stops_on_sigterm(
        kafka_bootstrap: str, finance_emu: RunningEmulator, unique: str, tmp_path: Path) -> None:
    prefix = f"cli-{unique}."
    create_topics(kafka_bootstrap, [prefix + "commands", prefix + "applied", prefix + "dlq"])
    cmd = customer_command(f"CLI{unique[:6]}", "From the CLI")
    produce_raw(kafka_bootstrap, prefix + "commands", [(cmd.record_key.encode(), encode(cmd))])
    log = tmp_path / "sink.log"
    proc = launch(prefix, "sink", ["finance", "--group-id", f"cli-{unique}", "--batch-size", "1"],
                  finance_emu, kafka_bootstrap, log)
    wait_for(lambda: len(read_all(kafka_bootstrap, prefix + "applied")) == 1, proc, log)
    stop(proc, log)
    (ack,) = [decode_ack(v) for _, v, _ in read_all(kafka_bootstrap, prefix + "applied") if v]
    assert ack.command_id == cmd.command_id and ack.target_id
    assert finance_emu.client_secret not in log.read_text()


def test_sink_command_waits_for_its_topics_and_never_makes_them(
        kafka_bootstrap: str, finance_emu: RunningEmulator, unique: str, tmp_path: Path) -> None:
    """Started before `topics apply`, the sink made its ack topic itself through the broker's
    auto-create (not compacted: a drift `topics apply` names but never repairs). It waits for
    its topics instead, then exits 1 naming the missing ones."""
    from confluent_kafka.admin import AdminClient

    prefix = f"cli-{unique}."
    create_topics(kafka_bootstrap, [prefix + "commands", prefix + "dlq"])
    log = tmp_path / "sink.log"
    proc = launch(prefix, "sink", ["finance", "--group-id", f"cli-{unique}", "--topics-wait", "3"],
                  finance_emu, kafka_bootstrap, log)
    assert proc.wait(60) == 1, log.read_text()[-3000:]
    text = log.read_text()
    assert f"waiting for topics {prefix}applied" in text
    assert f"error: 1 topic(s) do not exist on this cluster after 3 s: {prefix}applied. Create the " \
           "catalog with `dualwrite topics apply`." in text
    assert "Traceback" not in text
    assert prefix + "applied" not in AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10).topics

    # Created while it waits: the sink starts and writes.
    proc = launch(prefix, "sink", ["finance", "--group-id", f"cli-{unique}", "--batch-size", "1"],
                  finance_emu, kafka_bootstrap, log)
    wait_for(lambda: "waiting for topics" in log.read_text(), proc, log)
    create_topics(kafka_bootstrap, [prefix + "applied"])
    cmd = customer_command(f"CLW{unique[:6]}", "After the wait")
    produce_raw(kafka_bootstrap, prefix + "commands", [(cmd.record_key.encode(), encode(cmd))])
    wait_for(lambda: len(read_all(kafka_bootstrap, prefix + "applied")) == 1, proc, log, timeout=60)
    stop(proc, log)


def test_source_command_without_its_checkpoint_topic_exits_1_naming_it(
        kafka_bootstrap: str, dataverse_emu: RunningEmulator, unique: str, tmp_path: Path) -> None:
    """Made by the broker's auto-create, the checkpoint topic would not be compacted: the
    broker's retention would delete the checkpoints and the source would start over."""
    from confluent_kafka.admin import AdminClient

    prefix = f"cli-{unique}."
    create_topics(kafka_bootstrap, [f"{prefix}dataverse.cdc.cdm_companies", prefix + "dlq"])
    log = tmp_path / "source.log"
    proc = launch(prefix, "source", ["dataverse", "--table", "cdm_companies", "--topics-wait", "2"],
                  dataverse_emu, kafka_bootstrap, log)
    assert proc.wait(60) == 1, log.read_text()[-3000:]
    text = log.read_text()
    assert f"source dataverse: waiting for topics {prefix}offsets" in text
    assert f"error: 1 topic(s) do not exist on this cluster after 2 s: {prefix}offsets." in text
    assert "Traceback" not in text
    assert prefix + "offsets" not in AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10).topics
