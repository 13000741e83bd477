from __future__ import annotations

import socket

import pytest

from dualwrite import ports

pytestmark = pytest.mark.unit


def test_a_port_the_kernel_offers_twice_is_handed_out_once(monkeypatch: pytest.MonkeyPatch) -> None:
    offered = iter([41001, 41001, 41002])
    monkeypatch.delenv(ports.PORTS_ENV, raising=False)
    monkeypatch.setattr(ports, "_bind", lambda port: next(offered))
    monkeypatch.setattr(ports, "_given", set())
    assert (ports.free_port(), ports.free_port()) == (41001, 41002)


def test_real_ports_are_distinct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ports.PORTS_ENV, raising=False)
    got = [ports.free_port() for _ in range(50)]
    assert len(set(got)) == len(got)


def test_a_block_hands_out_only_its_own_ports_each_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ports.PORTS_ENV, "23100-23119")
    monkeypatch.setattr(ports, "_given", set())
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 23105))
        busy.listen()
        got = [ports.free_port() for _ in range(19)]
        assert sorted(got) == [p for p in range(23100, 23120) if p != 23105]
        with pytest.raises(ports.PortBlockError, match="every port of DUALWRITE_PORTS=23100-23119 is taken"):
            ports.free_port()


@pytest.mark.parametrize("text", ["", "20000", "20000-", "a-b", "900-2000", "30000-20000", "60000-70000"])
def test_a_malformed_block_is_a_typed_error(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    with pytest.raises(ports.PortBlockError, match="is not a block START-END"):
        ports.port_block(text)


def test_a_run_is_consecutive_free_within_the_block_and_given_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ports.PORTS_ENV, "23200-23211")
    monkeypatch.setattr(ports, "_given", set())
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 23204))
        busy.listen()
        # Only 23205..23210 or 23206..23211 hold six free ports in a row around the busy one.
        first = ports.free_run(6)
        assert first in (23205, 23206)
        assert ports.free_port() not in range(first, first + 6)
        with pytest.raises(ports.PortBlockError, match="no 6 consecutive free ports in DUALWRITE_PORTS=23200-23211"):
            ports.free_run(6)


def test_without_a_block_a_run_lies_below_the_ephemeral_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ports.PORTS_ENV, raising=False)
    first = ports.free_run(6)
    assert first >= 20000 and first + 5 < 32768
