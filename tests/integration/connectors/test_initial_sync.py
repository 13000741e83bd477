"""`dualwrite initial-sync` as a real process against the Finance emulator and a real broker:
a table of many pages, SIGKILLed half-way, run again: every row once (duplicates only from the
pages after the last checkpoint, with the same version), the summary right, and `dualwrite
source` then streams a change made after the captured position, with no snapshot of its own."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from connectors.common.source import Change, UntrustedPosition
from connectors.dataverse import DataverseReader
from connectors.dataverse.client import build_api
from connectors.dataverse.source import token_version
from dualwrite.initial_sync import SyncState
from tests.integration.connectors.conftest import create_topics, dataverse_conn, read_all
from tests.support.emulators import RunningEmulator
from topics import (
    ChangeEvent,
    SourceOffset,
    SourceOffsetKey,
    decode_event,
    decode_key,
    decode_model,
)

pytestmark = pytest.mark.integration

# Topic and checkpoint names redirected to unique ones, for both commands (they build their
# SourceSettings through dualwrite.commands.connectors).
DRIVER = """
import sys
import dualwrite.commands.connectors as cli
prefix = sys.argv[1]
original = cli.SourceSettings
cli.SourceSettings = lambda **kw: original(**kw, topic_prefix=prefix, offsets_topic=prefix + "offsets",
                                          dlq_topic=prefix + "dlq", checkpoint_table_prefix=prefix)
if sys.argv[2] == "source":
    cli.source_app(sys.argv[3:])
else:
    from dualwrite.cli import app
    app(["initial-sync", *sys.argv[3:]])
"""
PAGE = 10
ADDED = 200  # customers added to the seeded ones: 20+ pages
TASK_KEY = "initial-sync/customers/CustomersV3/*"


def launch(prefix: str, args: list[str], emu: RunningEmulator, bootstrap: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DUALWRITE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
           "DUALWRITE_FINANCE__URL": emu.base_url, "DUALWRITE_FINANCE__TOKEN_URL": emu.token_url,
           "DUALWRITE_FINANCE__CLIENT_ID": emu.client_id, "DUALWRITE_FINANCE__CLIENT_SECRET": emu.client_secret,
           "DUALWRITE_FINANCE__SOURCE_CLIENT_ID": emu.client_id,
           "DUALWRITE_STATE_DIR": str(log.parent / "state")}
    return subprocess.Popen([sys.executable, "-c", DRIVER, prefix, *args], env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, cwd=Path(__file__).parents[3])


def checkpoints(bootstrap: str, prefix: str) -> dict[str, SourceOffset]:
    out: dict[str, SourceOffset] = {}
    for key, value, _ in read_all(bootstrap, prefix + "offsets"):
        if value is not None:
            out[decode_model(SourceOffsetKey, key).table] = decode_model(SourceOffset, value)
    return out


def task_state(bootstrap: str, prefix: str) -> SyncState | None:
    offset = checkpoints(bootstrap, prefix).get(prefix + TASK_KEY)
    return SyncState.model_validate_json(offset.position) if offset else None


def events(bootstrap: str, topic: str) -> list[tuple[str, ChangeEvent]]:
    return [(decode_key(k).id, e) for k, v, _ in read_all(bootstrap, topic) if (e := decode_event(v)) is not None]


def after(event: ChangeEvent) -> dict[str, Any]:
    assert event.after is not None
    return event.after


def wait_for(predicate, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)


def test_killed_half_way_it_resumes_every_row_once_and_streaming_follows_without_a_gap(
        kafka_bootstrap: str, finance_emu: RunningEmulator, unique: str, tmp_path: Path) -> None:
    prefix = f"is-{unique}."
    topic = prefix + "finance.cdc.customersv3"
    create_topics(kafka_bootstrap, [topic, prefix + "offsets", prefix + "dlq"], compacted=(prefix + "offsets",))
    with finance_emu.client() as api:
        for n in range(ADDED):
            api.post("CustomersV3", json={"dataAreaId": "usmf", "CustomerAccount": f"IS-{n:04d}",
                                          "Name": f"Initial {n}", "CustomerGroupId": "10",
                                          "SalesCurrencyCode": "USD"}).raise_for_status()
        total = api.get("CustomersV3", params={"cross-company": "true", "$count": "true", "$top": "1"}
                        ).json()["@odata.count"]
    assert total > 20 * PAGE
    args = ["--map", "customers", "--page-size", str(PAGE)]
    started = time.monotonic()

    # 1. Slowed down, killed once a few pages are checkpointed.
    with finance_emu.admin() as admin:
        admin.put("/faults", json={"latency_ms": 400}).raise_for_status()
    log1 = tmp_path / "sync1.log"
    first = launch(prefix, ["sync", *args], finance_emu, kafka_bootstrap, log1)
    wait_for(lambda: (s := task_state(kafka_bootstrap, prefix)) is not None and s.read >= 2 * PAGE,
             first, log1)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    with finance_emu.admin() as admin:
        admin.put("/faults", json={"latency_ms": 0}).raise_for_status()
    at_kill = task_state(kafka_bootstrap, prefix)
    assert at_kill is not None and not at_kill.done and at_kill.read < total
    position, last_recid = (int(x) for x in at_kill.cursor.split(":"))

    # 2. A change after the captured position, to a row the first run already emitted.
    before_kill = events(kafka_bootstrap, topic)
    early = after(min(before_kill, key=lambda ke: int(after(ke[1])["RecId"]))[1])
    assert int(early["RecId"]) <= last_recid
    with finance_emu.client() as api:
        url = f"CustomersV3(dataAreaId='{early['dataAreaId']}',CustomerAccount='{early['CustomerAccount']}')"
        api.patch(url, params={"cross-company": "true"}, json={"Name": "Changed mid-sync"}).raise_for_status()

    # 3. Run again: it resumes after the checkpoint.
    log2 = tmp_path / "sync2.log"
    second = launch(prefix, ["sync", *args], finance_emu, kafka_bootstrap, log2)
    assert second.wait(60) == 0, log2.read_text()[-3000:]
    (line,) = [x for x in log2.read_text().splitlines() if x.startswith("customers finance CustomersV3")]
    counts = dict(re.findall(r"(\w+)=(\d+)", line))
    assert counts == {"read": str(total), "emitted": str(total), "skipped": "0", "differing": "0",
                      "other_company": "0", "dead_lettered": "0"}, line
    assert "(resumed, streaming checkpoint set)" in line

    snapshot = events(kafka_bootstrap, topic)
    assert {e.op for _, e in snapshot} == {"r"}
    by_key: dict[str, list[ChangeEvent]] = {}
    for key, event in snapshot:
        by_key.setdefault(key, []).append(event)
    assert len(by_key) == total  # every row
    duplicated = {k: es for k, es in by_key.items() if len(es) > 1}
    for key, copies in duplicated.items():
        # Only rows after the last checkpoint (emitted by the killed run, not yet covered), and
        # then the same version: the processor drops the copy by version.
        assert all(int(after(e)["RecId"]) > last_recid for e in copies), key
        assert len({e.source.version for e in copies}) == 1, key
    assert len(duplicated) <= 2 * PAGE  # the page in flight and the one whose last row was held
    assert [k for k, e in snapshot if e.source.snapshot == "last"] == [snapshot[-1][0]]
    stream = checkpoints(kafka_bootstrap, prefix)[prefix + "CustomersV3"]
    assert stream.position == str(position) and stream.snapshot_done  # the first run's capture

    # 4. The source streams from the captured position: the mid-sync change, then a later one,
    # and no snapshot of its own.
    log3 = tmp_path / "source.log"
    source = launch(prefix, ["source", "finance", "--table", "CustomersV3", "--poll-interval", "0.2"],
                    finance_emu, kafka_bootstrap, log3)
    try:
        with finance_emu.client() as api:
            api.patch(url, params={"cross-company": "true"}, json={"Name": "Changed after"}).raise_for_status()

        def streamed() -> list[str]:
            return [str(after(e)["Name"]) for _, e in events(kafka_bootstrap, topic)
                    if e.op == "u" and after(e).get("CustomerAccount") == early["CustomerAccount"]]

        wait_for(lambda: streamed() == ["Changed mid-sync", "Changed after"], source, log3)
        assert sum(1 for _, e in events(kafka_bootstrap, topic) if e.op == "r") == len(snapshot)
    finally:
        source.send_signal(signal.SIGTERM)
        assert source.wait(20) == 0, log3.read_text()[-3000:]
    print(f"initial-sync kill/resume/stream: {time.monotonic() - started:.1f}s")


def test_an_unknown_company_or_map_is_one_line_and_exit_2(
        kafka_bootstrap: str, finance_emu: RunningEmulator, unique: str, tmp_path: Path) -> None:
    prefix = f"is-{unique}."
    for args, message in ((["--map", "customers", "--company", "nope"], "error: no company nope in finance; "
                           "its companies are: "),
                          (["--map", "customerz"], "error: no map customerz; the maps are: resource_roles")):
        log = tmp_path / "sync.log"
        proc = launch(prefix, ["sync", *args], finance_emu, kafka_bootstrap, log)
        assert proc.wait(60) == 2, log.read_text()[-3000:]
        lines = [x for x in log.read_text().splitlines() if x.strip()]
        assert len(lines) == 1 and lines[0].startswith(message), lines


async def test_a_dataverse_snapshot_resumes_after_a_page_with_the_first_runs_position(
        dataverse_emu: RunningEmulator) -> None:
    conn = dataverse_conn(dataverse_emu).model_copy(update={"page_size": 1})
    reader = DataverseReader(conn, build_api(conn))
    try:
        pages = [p async for p in reader.snapshot("cdm_companies")]
        assert len(pages) >= 2 and pages[0].resume
        with dataverse_emu.client() as api:  # a change after the capture moves the feed on
            row = pages[0].items[0]
            assert isinstance(row, Change)
            api.patch(f"cdm_companies({row.key})", json={"cdm_name": "Renamed"}).raise_for_status()
        rest = [p async for p in reader.snapshot("cdm_companies", resume=pages[0].resume)]
        assert [[c.key for c in p.items if isinstance(c, Change)] for p in rest] == \
            [[c.key for c in p.items if isinstance(c, Change)] for p in pages[1:]]
        # The captured position, not a new one (the token's version; its suffix is a timestamp).
        assert token_version(rest[-1].position) == token_version(pages[-1].position) is not None
        fresh = [p async for p in reader.snapshot("cdm_companies")]
        assert (token_version(fresh[-1].position) or 0) > (token_version(pages[-1].position) or 0)
        with pytest.raises(UntrustedPosition):
            [p async for p in reader.snapshot("cdm_companies", resume="http://elsewhere.example/x")]
    finally:
        await reader.aclose()
