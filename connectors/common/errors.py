"""Typed flow control for the connectors, drawn once here.

    ConnectorError                  base of everything a connector raises on purpose
      RetryLater(retry_after)       transient: throttled (429/503), 5xx, timeout, connection lost.
                                    Try the same work again, not before ``retry_after`` seconds
                                    when the server named a time, else after our own backoff.
                                    Never a reason to drop data or move an offset.
      Rejected(reason, status, body) permanent: the target or source will never accept this as
                                    it is (400, 403, 404 on an update-only write, 412 after
                                    re-read, a row the source cannot describe). Goes to
                                    ``sync.dlq`` with its reason; the line keeps going.
        AuthFailed                  the token endpoint refused our credentials (fatal config).
      DlqFlood (common.sink)        too many rejections in a row: stop the sink, alert, don't
                                    drain the topic into the DLQ.
      PositionExpired               a change-tracking position (Dataverse delta token, Finance
                                    watermark) is no longer valid: re-snapshot, don't crash.

Return values, not exceptions, carry success; these are raised only at the point where the
caller must choose between waiting, dead-lettering and re-snapshotting.
"""

from __future__ import annotations

__all__ = ["AuthFailed", "ConnectorError", "Deferred", "PositionExpired", "Rejected", "RetryLater"]


class ConnectorError(Exception):
    """Base class of the connectors' deliberate errors."""


class RetryLater(ConnectorError):
    """Transient failure: do the same work again later (backpressure, not an error)."""

    def __init__(self, reason: str, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.status = status

    def __repr__(self) -> str:
        return f"RetryLater(reason={self.reason!r}, retry_after={self.retry_after}, status={self.status})"


class Deferred(RetryLater):
    """A write that can only succeed after commands still to come (a row still referenced by
    rows whose deletes follow): the sink holds it and goes on with the next window, instead of
    retrying it in place while the very commands it waits for queue behind it."""


class Rejected(ConnectorError):
    """Permanent failure of one write or one source row: dead-letter it and move on."""

    def __init__(self, reason: str, status: int | None = None, body: str = "",
                 error_class: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.body = body
        self.error_class = error_class or type(self).__name__

    def __repr__(self) -> str:
        return f"Rejected(reason={self.reason!r}, status={self.status})"


class AuthFailed(Rejected):
    """The token endpoint refused the client credentials."""


class PositionExpired(ConnectorError):
    """The stored change-tracking position can no longer be read; take a new snapshot."""
