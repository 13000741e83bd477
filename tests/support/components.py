"""Driving the demo's components 2 to 5 (`dualwrite.demo.components`) in a test, as the demo's
drain does: Finance's rounds every second until everything is back.

`FinanceRounds` runs them in a daemon thread, so a test can go on with other activity meanwhile
(the chaos tier plays its random activity and kills processes while Finance posts and its jobs
run) and collect the outcome later; the thread uses only the components' own API sessions.
"""

from __future__ import annotations

import threading
import time

from dualwrite.demo.components import Components, State

ROUND_S = 1.0


class FinanceRounds:
    """Finance's rounds for ``components`` in a thread until everything is back or ``timeout``."""

    def __init__(self, components: Components, timeout: float) -> None:
        self.components, self.timeout = components, timeout
        self._state: State | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="finance-rounds", daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.timeout
        try:
            while time.monotonic() < deadline:
                self.components.tick()
                self._state = self.components.state()
                if self._state.done:
                    return
                time.sleep(ROUND_S)
        except BaseException as exc:  # re-raised by `result` in the test's thread
            self._error = exc

    def start(self) -> FinanceRounds:
        self._thread.start()
        return self

    def result(self) -> State:
        """The state once everything is back; an AssertionError naming what is not (or the
        error a round raised)."""
        self._thread.join(self.timeout + 60.0)
        if self._error is not None:
            raise self._error
        state = self._state
        if state is None or not state.done:
            raise AssertionError(f"not back within {self.timeout:.0f}s: " + (
                "no round finished" if state is None else f"invoices {state.invoices}, expense report and "
                f"vendor invoice {state.procured}, {state.progress}"))
        return state

