from __future__ import annotations

import pytest

from dualwrite import ports


def test_a_port_the_kernel_offers_twice_is_handed_out_once(monkeypatch: pytest.MonkeyPatch) -> None:
    offered = iter([41001, 41001, 41002])
    monkeypatch.setattr(ports, "_probe", lambda: next(offered))
    monkeypatch.setattr(ports, "_given", set())
    assert (ports.free_port(), ports.free_port()) == (41001, 41002)


def test_real_ports_are_distinct() -> None:
    got = [ports.free_port() for _ in range(50)]
    assert len(set(got)) == len(got)
