"""A change set the target can take only after commands still to come (a contract header still
referenced by lines whose deletes a later window brings, beside the project unlink in the same
change set) waits for a later window, whole and uncommitted, while the sink writes what follows;
retried in place, it held back the window that would have freed it until it was dead-lettered
(a full test run: the contract delete test, 120 tries, then both members in the DLQ).

The engine runs with its Kafka edges replaced, as in `test_sink_skips`."""

from __future__ import annotations

import asyncio

import pytest

from connectors.common.errors import Deferred, Rejected
from connectors.common.sink import SinkSettings
from connectors.common.sinkstate import Write
from connectors.common.writer import Again, Done, Failed, Outcome
from tests.unit.connectors.fakes import command
from tests.unit.connectors.test_sink_dead_letters import engine
from tests.unit.connectors.test_sink_skips import window

pytestmark = pytest.mark.unit

TRIES = 3  # the Finance sink's REFERENCED_RETRIES, small


class ReferencedUntilTheLineIsGone:
    """Finance as the failed run met it: the header's delete is refused while its line exists,
    and a refused change set comes back refused for each of its members."""

    class api:  # the writer's API client, as far as the sink asks it (no Retry-After)
        class not_before:
            @staticmethod
            def remaining() -> float:
                return 0.0

    def __init__(self) -> None:
        self.line_gone = False
        self.tries = 0
        self.landed: list[str] = []

    async def write(self, units: list[list[Write]], *_: object) -> list[Outcome]:
        out: list[Outcome] = []
        for unit in units:
            keys = [w.command.key["ProjectId"] for w in unit]
            if "H" in keys and not self.line_gone:
                self.tries += 1
                for w in unit:
                    out.append(Again(w, Deferred(f"still referenced (try {self.tries})")) if self.tries < TRIES
                               else Failed(w, Rejected("HTTP 400", 400, "referenced", "Http400")))
                continue
            for w in unit:
                self.landed.append(w.command.key["ProjectId"])
                self.line_gone |= w.command.key["ProjectId"] == "L"
                out.append(Done(w))
        return out


async def test_a_deferred_change_set_waits_whole_while_the_next_window_frees_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    writer = ReferencedUntilTheLineIsGone()
    eng, producer = engine(writer, monkeypatch, SinkSettings(target="finance", retry_pause_s=0.001))
    unlink = command("P", 2, txid="t", tx_size=2)
    header_delete = command("H", 3, op="delete", txid="t", tx_size=2)
    first = await window(eng, [unlink, header_delete], 0)
    assert writer.landed == [] and first.committed == []  # nothing of the change set landed or committed
    assert sorted(e.command.key["ProjectId"] for e in eng._held) == ["H", "P"]  # held whole

    line_delete = command("L", 4, op="delete")
    await window(eng, [line_delete], 2)  # the window that brings the line's delete is not held back
    assert "L" in writer.landed
    await asyncio.sleep(0.01)  # past the retry pause
    await window(eng, [], 3)
    assert writer.landed[-2:] == ["P", "H"]  # then the change set lands, in its order
    assert [r for r in producer.records if r[0] == "sync.dlq"] == []
    assert not eng._held
