"""Components 2 to 5 of domain.md on top of a `Scenario`'s projects: what `dualwrite demo` and
the chaos tier add to the project, task and customer activity (component 1).

`Components.make` has people, on one project (tasks "1" and "1.1" under it), log a day of time
approved into actuals and assign a resource (1.2, `Scenario.log_time`, `assign_resource`), bills
a contract (1.3, `dualwrite.demo.billing`) and leaves to Finance an expense report and a vendor
invoice on the project (1.4, 1.5, `dualwrite.demo.procurement`). `tick` is one round of what
Finance does meanwhile, as its people and batch scheduler would: the contract's sales tax group
once the contract is there, the expense report and vendor invoice once the project is there,
then the periodic jobs (`dualwrite.finance_jobs`: import from staging, post journals and
proposals). `progress` says what has come back: the scenario's own expectations (actuals staged
with vouchers back, the hour estimate), the invoice posted with its sales tax back, and the
expense and vendor invoice actuals; `done` when all of it has.
"""

from __future__ import annotations

from dataclasses import dataclass

from dualwrite.apiclient import ApiError
from dualwrite.demo.billing import Billing
from dualwrite.demo.procurement import Procurement
from dualwrite.finance_jobs import run_round
from dualwrite.scenario import Progress, Scenario

__all__ = ["Components", "State"]


@dataclass(frozen=True)
class State:
    """How far the components came back: (arrived, made) per kind."""

    progress: Progress
    invoices: tuple[int, int] = (0, 0)
    procured: tuple[int, int] = (0, 0)  # expense report, vendor invoice: their actuals in Dataverse

    @property
    def done(self) -> bool:
        return self.progress.done and self.invoices[0] == self.invoices[1] and self.procured[0] == self.procured[1]


class Components:
    """Components 2-5 of one run; `make` once, then `tick` and `state` per round."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.billing = Billing(scenario)
        self.procurement: Procurement | None = None

    def make(self, project: str | None = None) -> list[str]:
        """Time, a resource, a billed contract, and Finance's documents to come on ``project``
        (one with task "1.1"; made with tasks "1" and "1.1" when None); what it did."""
        s = self.scenario
        if project is None:
            project = s.create_project()
            s.create_task(project, "1")
            s.create_task(project, "1.1", parent="1")
        actuals = s.log_time(project, "1.1")  # not on a contract: a cost actual only
        s.assign_resource(project, "1.1")
        self.procurement = Procurement(s, project)
        return [f"Alice Adams logged 8 h of Design on {project}/1.1, approved: {len(actuals)} actual(s)",
                f"Bob Brown assigned to {project}/1.1 for 40 h (hour estimate)", *self.billing.make()]

    def tick(self) -> list[str]:
        """One round of Finance's work while actuals are expected; what it did. A step Finance
        refuses is reported and tried again on the next round."""
        if not self.scenario.expected.finance_actuals:
            return []
        done: list[str] = []
        try:
            for step in (self.billing.tax_setup, self.procurement.tick if self.procurement else lambda: None):
                line = step()
                if line is not None:
                    done.append(line)
            jobs = run_round(self.scenario.fo)
            if not jobs.idle:
                done.append(jobs.summary() + "".join(f"; {r}" for r in jobs.refused))
        except ApiError as exc:
            done.append(f"finance jobs failed: {exc}")
        return done

    def state(self) -> State:
        """What has come back (the procurement's actuals join the scenario's expectations first)."""
        procured = self.procurement.progress() if self.procurement else (0, 0)
        return State(self.scenario.progress(), self.billing.progress(), procured)
