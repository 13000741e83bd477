"""What one flush window of a sink takes from its commands topic.

A window waits up to ``first_wait_s`` for its first command, then ``linger_s`` for more to be
written with it: updates of one record that come within the linger coalesce into one write,
and a backlog fills the window at once. A window used to last the whole flush interval whatever
came, so a command waited up to 0.5 s (0.25 s on average) before its write started, and a task
twice: once for its project's write, once for its own.

Blocking (librdkafka's ``consume``): the sink runs it on a thread.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["DEFAULT_LINGER_S", "Consumes", "take"]

DEFAULT_LINGER_S = 0.1


class Consumes(Protocol):
    def consume(self, num_messages: int, timeout: float) -> list[Any]: ...


def take(consumer: Consumes, max_records: int, first_wait_s: float, linger_s: float) -> list[Any]:
    """Up to ``max_records`` records: none when nothing came within ``first_wait_s``."""
    first = consumer.consume(1, first_wait_s)
    if not first or max_records <= 1:
        return first
    return first + consumer.consume(max_records - 1, linger_s)
