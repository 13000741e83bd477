"""Writing command units to an OData target, one request or packed into ``$batch``.

A unit is a list of writes that must land together (a source transaction -> one change set)
or a single independent write. Units are packed into ``$batch`` requests of at most
``batch_size`` operations; with ``batch_size=1`` a single write goes as a plain request.

A unit larger than ``max_change_set`` (the target's limit: Dataverse takes at most 1,000
requests per ``$batch``; Finance publishes no limit, the sink uses the same) is written as
consecutive parts of at most that many writes, in the unit's order (the transaction's
``tx_order``, so its first member, an invoice header say, is in the first part), each part one
change set sent only after the one before it landed. **Atomicity is then per part, not per
transaction**: the target may briefly hold the first parts without the rest. A part that does
not land stops the unit: nothing after it is sent (its writes come back `Again` with the part's
retry, or `Failed` with the part's reason, so they are retried or dead-lettered, never lost).
Before the next part goes, the writes of the part that landed are handed to ``landed`` (the
sink makes their acks durable there), so a crash between parts re-sends only what was not
applied yet: the applied state skips the landed parts at zero requests. The
system-specific subclass says how a write becomes a request (`plan`) and what an answer means
(`judge`): done, rejected, retry later, or "send this other request instead" (Finance: PATCH
missed -> POST, POST duplicate -> PATCH). A changed plan re-sends the whole unit, which is safe
because a failed change set was rolled back.

Failures stay with the unit that caused them: a unit that cannot be planned (`InvalidKey`: a
control character in a key) or that trips any unexpected exception while it is planned, sent or
judged becomes `Failed` with the exception's class and message (the sink dead-letters it), and
the other units of the window go on; a ``$batch`` refused as a whole (400/413) is split in
halves and sent again, down to single change sets, so only the bad write is refused.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from connectors.common.batch import (
    BatchOp,
    BatchResult,
    build_batch,
    encode_part,
    match_responses,
    parse_batch_response,
)
from connectors.common.errors import Rejected, RetryLater
from connectors.common.http import ApiClient, classify, rejection
from connectors.common.odata import check_key_value
from connectors.common.sinkstate import Write

__all__ = ["DEFAULT_MAX_CHANGE_SET", "Again", "Done", "Failed", "Landed", "ODataWriter", "Outcome", "parts"]


@dataclass(frozen=True)
class Done:
    write: Write
    etag: str | None = None
    target_id: str | None = None


@dataclass(frozen=True)
class Failed:
    write: Write
    rejected: Rejected


@dataclass(frozen=True)
class Again:
    write: Write
    retry: RetryLater


Outcome = Done | Failed | Again
# Called with the writes of a part that landed, before the next part of its unit is sent.
Landed = Callable[[list[Done]], Awaitable[None]]
Judgement = Outcome | BatchOp  # a BatchOp means: re-send the unit with this request instead

# results (None: the server never reached the change set; an Exception: it could not be sent
# or read, the unit fails with it), index of the failing op in a rolled-back change set
UnitAnswer = tuple[list[BatchResult] | RetryLater | Exception | None, int | None]

MAX_REPLANS = 3
# A $batch refused as a whole with one of these is split and sent again in halves.
SPLIT_STATUSES = frozenset({400, 413})
# Dataverse's documented limit of requests per $batch; Finance publishes none.
DEFAULT_MAX_CHANGE_SET = 1000

log = logging.getLogger(__name__)


def parts(unit: list[Write], max_change_set: int) -> list[list[Write]]:
    """The unit in consecutive change sets of at most ``max_change_set`` writes, order kept."""
    size = max(1, max_change_set)
    return [unit[i:i + size] for i in range(0, len(unit), size)] or [unit]


def _not_sent(rest: list[Write], part: list[Outcome]) -> list[Outcome]:
    """Outcomes of the writes after a part that did not land: they wait for the part's retry
    (`Again`), or share its rejection (`Failed`, dead-lettered: a retry re-drives them)."""
    again = next((o for o in part if isinstance(o, Again)), None)
    if again is not None:
        return [Again(w, again.retry) for w in rest]
    failed = next(o for o in part if isinstance(o, Failed))
    r = failed.rejected
    reason = Rejected(f"not sent: an earlier part of its transaction failed: {r.reason}", r.status, r.body,
                      r.error_class)
    return [Failed(w, reason) for w in rest]


class ODataWriter(ABC):
    """Base of `DataverseWriter` and `FinanceWriter`: each system says how a write becomes a
    request (`plan`) and what an answer means (`judge`); the batching and retries are shared."""

    def __init__(self, api: ApiClient, service_root: str, batch_size: int = 1) -> None:
        self.api = api
        self.service_root = service_root.rstrip("/")
        self.batch_size = max(1, batch_size)

    # -- system-specific --------------------------------------------------------------
    @abstractmethod
    def plan(self, write: Write) -> BatchOp:
        """The request that applies `write` (URL, method, headers, body)."""

    @abstractmethod
    def judge(self, write: Write, op: BatchOp, result: BatchResult) -> Judgement:
        """What the target's answer to `op` means: done, again, or failed."""

    async def prepare(self, units: list[list[Write]]) -> None:
        """Reads a system needs before it can plan these writes (default: none). Must not
        raise for one write's sake: keep per-write failures for `plan` to raise."""
        return None

    # -- shared -----------------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"{self.service_root}/{path}"

    async def write(self, units: list[list[Write]], landed: Landed | None = None,
                    max_change_set: int = DEFAULT_MAX_CHANGE_SET) -> list[Outcome]:
        """One outcome per write. Units longer than ``max_change_set`` go part after part (see
        the module docstring); ``landed`` hears of every part that landed before its unit's
        next part is sent (an exception it raises ends the call: nothing more is sent)."""
        outcomes: list[Outcome] = []
        await self.prepare(units)
        # A unit that cannot be planned fails whole before any of its parts is sent.
        todo = [parts(unit, max_change_set) for unit in units
                if len(unit) <= max_change_set or self._plan_unit(unit, outcomes) is not None]
        while todo:
            answered = {o.write.command.command_id: o for o in await self._write_units([p[0] for p in todo])}
            outcomes.extend(answered.values())
            going: list[list[list[Write]]] = []
            done: list[Done] = []
            for unit_parts in todo:
                if len(unit_parts) == 1:
                    continue
                part = [answered[w.command.command_id] for w in unit_parts[0]]
                rest = [w for p in unit_parts[1:] for w in p]
                if all(isinstance(o, Done) for o in part):
                    done.extend(o for o in part if isinstance(o, Done))
                    going.append(unit_parts[1:])
                else:
                    outcomes.extend(_not_sent(rest, part))
            if going and landed is not None:
                await landed(done)
            todo = going
        return outcomes

    async def _write_units(self, units: list[list[Write]]) -> list[Outcome]:
        """One outcome per write of these units (each at most one change set)."""
        outcomes: list[Outcome] = []
        planned = [p for p in (self._plan_unit(unit, outcomes) for unit in units) if p is not None]
        for _ in range(MAX_REPLANS + 1):
            if not planned:
                break
            replanned: list[list[tuple[Write, BatchOp]]] = []
            packs = self._pack(planned)
            answers = await asyncio.gather(*(self._send_guarded(p) for p in packs))
            for pack, unit_answers in zip(packs, answers, strict=True):
                for unit, answer in zip(pack, unit_answers, strict=True):
                    try:
                        retry = self._settle(unit, answer, outcomes)
                    except Exception as exc:  # a judge that fails on a strange answer
                        outcomes.extend(self._unit_failed([w for w, _ in unit], exc))
                        continue
                    if retry:
                        replanned.append(retry)
            planned = replanned
        for unit in planned:  # still changing its mind after MAX_REPLANS: permanent
            for write, op in unit:
                outcomes.append(Failed(write, Rejected(f"{op.method} {op.url} kept being re-planned",
                                                       error_class="ReplanLimit")))
        return outcomes

    def _plan_unit(self, unit: list[Write], outcomes: list[Outcome]) -> list[tuple[Write, BatchOp]] | None:
        """The unit's requests, each checked to be sendable; a unit that cannot be planned
        (`InvalidKey`, or any bug tripped by one command's data) fails alone, before any
        request is built for it."""
        try:
            for w in unit:  # whether the key goes into a URL or (Finance POST) into a body
                for name, value in w.command.key.items():
                    check_key_value(value, name)
            planned = [(w, self.plan(w)) for w in unit]
            for _, op in planned:
                encode_part(op)  # the same check a $batch part gets, for plain requests too
        except Exception as exc:
            outcomes.extend(self._unit_failed(unit, exc))
            return None
        return planned

    @staticmethod
    def _unit_failed(unit: list[Write], exc: Exception) -> list[Outcome]:
        """Every write of a unit Failed with the reason: a `Rejected` keeps its class (e.g.
        ``InvalidKey``); anything else is unexpected and dead-letters under its own class.
        A `RetryLater` (a read `prepare` needed was throttled) makes the unit go again."""
        if isinstance(exc, RetryLater):
            return [Again(w, exc) for w in unit]
        if isinstance(exc, Rejected):
            reason = exc
        else:
            log.error("unexpected %s for a unit of %d write(s): %s", type(exc).__name__, len(unit), exc,
                      exc_info=exc)
            reason = Rejected(f"{type(exc).__name__}: {exc}"[:2000], error_class=type(exc).__name__)
        if len(unit) > 1:  # the other writes of a change set fail with it: it is atomic
            reason = Rejected(f"change set not sent: {reason.reason}", reason.status, reason.body,
                              reason.error_class)
        return [Failed(w, reason) for w in unit]

    def _settle(self, unit: list[tuple[Write, BatchOp]], answer: UnitAnswer,
                      outcomes: list[Outcome]) -> list[tuple[Write, BatchOp]] | None:
        """Record final outcomes; return the unit (maybe re-planned) if it must be sent again."""
        results, culprit = answer
        if results is None:
            results = RetryLater("batch stopped before this change set")
        if isinstance(results, RetryLater):
            outcomes.extend(Again(w, results) for w, _ in unit)
            return None
        if isinstance(results, Exception):
            outcomes.extend(self._unit_failed([w for w, _ in unit], results))
            return None
        rolled_back = len(unit) > 1 and results[0].status >= 300 and all(r is results[0] for r in results)
        if not rolled_back:
            # Each operation stands on its own (a single write, or a change set that succeeded).
            judged = [self.judge(w, op, r) for (w, op), r in zip(unit, results, strict=True)]
            outcomes.extend(j for j in judged if not isinstance(j, BatchOp))
            redo = [(w, j) for (w, _), j in zip(unit, judged, strict=True) if isinstance(j, BatchOp)]
            return redo or None
        # A change set failed and was rolled back as a whole. Without a Content-ID naming the
        # failing request we can only judge the set by its first request and never re-plan it.
        failure = results[0]
        verdict = self.judge(*unit[culprit if culprit is not None else 0], failure)
        if isinstance(verdict, Again):
            outcomes.extend(Again(w, verdict.retry) for w, _ in unit)
            return None
        if isinstance(verdict, BatchOp) and culprit is not None:
            return [(w, verdict if i == culprit else op) for i, (w, op) in enumerate(unit)]
        if isinstance(verdict, Done) and culprit is not None:
            # e.g. a DELETE of a row already gone: its effect holds, the rest goes again.
            outcomes.append(Done(unit[culprit][0]))
            return [pair for i, pair in enumerate(unit) if i != culprit]
        reason = verdict.rejected if isinstance(verdict, Failed) else self.rejected(
            unit[0][0], failure, "change set failed").rejected
        for write, _ in unit:
            outcomes.append(Failed(write, Rejected(f"change set rolled back: {reason.reason}",
                                                   reason.status, reason.body, reason.error_class)))
        return None

    def _pack(self, planned: list[list[tuple[Write, BatchOp]]]) -> list[list[list[tuple[Write, BatchOp]]]]:
        """Group units into $batch requests of <= batch_size operations (a big unit alone)."""
        packs: list[list[list[tuple[Write, BatchOp]]]] = []
        current: list[list[tuple[Write, BatchOp]]] = []
        size = 0
        for unit in planned:
            if current and size + len(unit) > self.batch_size:
                packs.append(current)
                current, size = [], 0
            current.append(unit)
            size += len(unit)
        if current:
            packs.append(current)
        return packs

    async def _send_guarded(self, pack: list[list[tuple[Write, BatchOp]]]) -> list[UnitAnswer]:
        """`_send_pack`, but an unexpected exception never escapes: a pack of several units is
        sent again unit by unit (so only the unit that trips it fails), a lone unit fails."""
        try:
            return await self._send_pack(pack)
        except Exception as exc:
            if len(pack) == 1:
                return [(exc, None)]
        answers = await asyncio.gather(*(self._send_guarded([unit]) for unit in pack))
        return [a for unit_answers in answers for a in unit_answers]

    async def _send_pack(self, pack: list[list[tuple[Write, BatchOp]]]) -> list[UnitAnswer]:
        if len(pack) == 1 and len(pack[0]) == 1 and self.batch_size == 1:
            _, op = pack[0][0]
            try:
                return [([await self._send_single(op)], None)]
            except RetryLater as exc:
                return [(exc, None)]
        groups: list[list[BatchOp]] = []
        counter = 0
        for unit in pack:
            group = []
            for _, op in unit:
                counter += 1
                group.append(BatchOp(op.method, op.url, op.body, op.headers, str(counter)))
            groups.append(group)
        body, content_type = build_batch(groups)
        try:
            response = await self.api.request(
                "POST", "$batch", content=body,
                headers={"Content-Type": content_type, "Prefer": "odata.continue-on-error"})
        except RetryLater as exc:
            return [(exc, None) for _ in pack]
        if response.status_code in SPLIT_STATUSES and len(pack) > 1:
            # The batch as a whole was refused (one malformed part, too large): send each half
            # on its own, down to single change sets, so only the bad write is refused. Change
            # sets are never split (they are atomic); at most 2n-1 requests for n units.
            await response.aclose()
            half = len(pack) // 2
            first, second = await asyncio.gather(self._send_guarded(pack[:half]),
                                                 self._send_guarded(pack[half:]))
            return first + second
        if response.status_code >= 400:
            # The batch as a whole was refused and cannot be split further: every op of the
            # (single) change set shares the fate.
            refused = BatchResult(response.status_code, {k.lower(): v for k, v in response.headers.items()},
                                  response.content)
            return [([refused] * len(g), None) for g in groups]
        try:
            parts = parse_batch_response(response.content, response.headers.get("Content-Type", ""))
        except ValueError as exc:
            # We cannot tell what was applied; every write is an idempotent upsert/delete by
            # key, so sending the same units again is safe.
            return [(RetryLater(f"unreadable $batch response: {exc}"), None) for _ in pack]
        out: list[UnitAnswer] = []
        for group, results in zip(groups, match_responses(groups, parts), strict=True):
            culprit = None
            if results is not None and results and results[0].content_id:
                ids = [op.content_id for op in group]
                if results[0].content_id in ids and all(r is results[0] for r in results):
                    culprit = ids.index(results[0].content_id)
            out.append((results, culprit))
        return out

    async def _send_single(self, op: BatchOp) -> BatchResult:
        headers = dict(op.headers)
        response: httpx.Response = await self.api.request(op.method, op.url, json=op.body, headers=headers)
        return BatchResult(response.status_code, {k.lower(): v for k, v in response.headers.items()},
                           response.content, op.content_id)

    def transient(self, write: Write, result: BatchResult) -> Again | None:
        """Again for a transient status inside a batch answer."""
        fake = httpx.Response(result.status, headers=result.headers, content=result.body)
        retry = classify(fake, self.api.clock.time(), self.api.config.retry_after_cap_s)
        return Again(write, retry) if retry is not None else None

    def rejected(self, write: Write, result: BatchResult, reason: str) -> Failed:
        fake = httpx.Response(result.status, headers=result.headers, content=result.body)
        return Failed(write, rejection(fake, reason))
