"""`dualwrite demo`: local Kafka, both emulators, topics, worker, sources and sinks as child
processes, realistic activity in Dataverse and Finance, live progress, and a check at the end.

The scripted demo also logs and approves time on one task and assigns a resource to it: the
actuals Dataverse creates and the hour estimate reach Finance's staging tables. And it bills
(`dualwrite.demo.billing`): a contract with its funding source, a project on it with a
time-and-material line, approved time, a proforma invoice confirmed; the invoice proposal
reaches Finance after the actuals it bills, and the project accountant gives the contract its
sales tax group there. And, once the first project has arrived in Finance, Finance posts an
expense report and a vendor invoice on it (`dualwrite.demo.procurement`), whose Expense and
Material actuals come back from Dataverse to Finance's staging: all five components
(`dualwrite.demo.components`). Finance's periodic jobs (`dualwrite.finance_jobs`: import from
staging, post the journals, post the invoice proposals) run every second while the pipeline
drains, as Finance's batch scheduler would, until the journals and the proposal are posted and
the vouchers and the proposal's sales tax are back on the Dataverse actuals (the "vouchers" and
"invoices" rows) and the expense and vendor invoice actuals are in Dataverse (the "expenses,
vendor invoices" row), then staged and posted with their vouchers back. The end check waits
for all of it, then for reconcile to find every map in sync (write-back included).

``--workers N`` runs N workers in one consumer group; ``--brokers 3`` a local three-node cluster
whose topics (the catalog's and the workers' own) are replicated 3 times.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from dualwrite.capture import topic_catalog
from dualwrite.demo.components import Components, State
from dualwrite.demo.roundtrip import roundtrip
from dualwrite.kafka import ClasspathError, LocalKafka, LocalKafkaError
from dualwrite.kafka.broker import port_in_use
from dualwrite.scenario import Scenario
from dualwrite.settings import Settings
from dualwrite.stack import Stack, StackConfig
from dualwrite.supervisor import ChildFailed
from topics import apply_topics

console = Console()
# Flow rows shown only when the demo made such records (the random `--seconds` activity does not).
_ONLY_WHEN_MADE = frozenset({"hour estimates", "actuals", "vouchers", "invoices", "expenses, vendor invoices"})


@dataclass(frozen=True)
class DemoOptions:
    workdir: Path
    port: int
    seconds: float | None
    drain_timeout: float
    keep_running: bool
    workers: int = 1
    brokers: int = 1


def _table(stack: Stack, state: State | None, activity: list[str], phase: str) -> Group:
    procs = Table(title=f"dualwrite demo: {phase}", expand=False)
    procs.add_column("process")
    procs.add_column("state")
    procs.add_column("starts", justify="right")
    for child in stack.sup.children.values():
        procs.add_row(child.name, "[green]running[/green]" if child.alive else "[red]exited[/red]",
                      str(child.starts))
    flow = Table(title="arrived / created", expand=False)
    flow.add_column("what")
    flow.add_column("direction")
    flow.add_column("arrived", justify="right")
    if state is not None:
        progress, invoices, procured = state.progress, state.invoices, state.procured
        for name, direction, (got, want) in (
                ("projects", "Dataverse -> Finance ProjectsV2", progress.projects),
                ("tasks", "Dataverse -> Finance ProjectTasks", progress.tasks),
                ("customers", "Finance -> Dataverse accounts", progress.customers),
                ("hour estimates", "Dataverse -> Finance HourEstimateStaging", progress.estimates),
                ("actuals", "Dataverse -> Finance ActualsStaging", progress.actuals),
                ("vouchers", "Finance posting -> Dataverse actuals", progress.vouchers),
                ("invoices", "Dataverse -> Finance InvoiceProposals, posted, tax back", invoices),
                ("expenses, vendor invoices", "Finance posting -> Dataverse -> actuals to Finance", procured)):
            if want == 0 and name in _ONLY_WHEN_MADE:
                continue
            colour = "green" if got == want else "yellow"
            flow.add_row(name, direction, f"[{colour}]{got} / {want}[/{colour}]")
    recent = Table(title="recent activity", expand=False, show_header=False)
    for line in activity[-6:]:
        recent.add_row(line)
    return Group(procs, flow, recent)


def _scripted(scenario: Scenario) -> tuple[list[str], str]:
    done = []
    for _ in range(3):
        number = scenario.create_project()
        for wbs in ("1", "2", "3"):
            scenario.create_task(number, wbs)
        scenario.create_task(number, "1.1", parent="1")
        done.append(f"project {number} with 4 tasks (1.1 under 1)")
    for _ in range(2):
        done.append(f"customer {scenario.create_customer()}")
    first = sorted(scenario.expected.finance_projects)[0][1]
    scenario.rename_project(first, f"Implementation {first} (renamed)")
    done.append(f"renamed {first}")
    return done, first


def run_demo(opts: DemoOptions) -> int:
    settings = Settings()
    LocalKafka(opts.workdir / "kafka").down()  # a previous demo's broker in this workdir
    shutil.rmtree(opts.workdir, ignore_errors=True)  # every demo starts from a fresh tenant
    opts.workdir.mkdir(parents=True)
    kafka = LocalKafka(opts.workdir / "kafka", port=opts.port, heap=settings.local_kafka.heap,
                       brokers=opts.brokers, jvm_options=settings.local_kafka.jvm_options)
    # The topics (the catalog's here, the workers' own through the stack) follow the cluster.
    settings.topics.replication = kafka.replication
    taken = [n.port for n in kafka.nodes if port_in_use(n.port)]
    if taken:
        console.print(f"[red]error:[/red] port {taken[0]} is taken; run `dualwrite demo --port N`.")
        return 1
    try:
        with console.status(f"Starting Kafka on {kafka.bootstrap} (the first start fetches jars with Maven) ..."):
            kafka.up()
    except (LocalKafkaError, ClasspathError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 1
    console.print(f"[green]✓[/green] Kafka ready on {kafka.bootstrap}")
    stack = Stack(StackConfig(workdir=opts.workdir, kafka_bootstrap=kafka.bootstrap,
                              workers=opts.workers, replication=kafka.replication))
    try:
        return _run(opts, settings, kafka, stack)
    except KeyboardInterrupt:
        console.print("Interrupted: stopping every process ...")
        return 130
    except ChildFailed as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 1
    finally:
        stack.stop()
        if not opts.keep_running:
            kafka.down()
        console.print(f"Logs of every process: {stack.sup.log_dir}")


def _run(opts: DemoOptions, settings: Settings, kafka: LocalKafka, stack: Stack) -> int:
    client = {"bootstrap.servers": kafka.bootstrap}
    report = apply_topics(client, topic_catalog(settings))
    console.print(f"[green]✓[/green] topics: {len(report.created)} created")
    if roundtrip(client) is None:
        console.print("[red]error:[/red] a sample change event did not make the round trip")
        return 1
    console.print("[green]✓[/green] a sample change event made the round trip through Kafka")
    with console.status("Starting the Dataverse and Finance emulators ..."):
        stack.start_emulators()
    console.print(f"[green]✓[/green] emulators: Dataverse {stack.dv_url}, Finance {stack.fo_url}")
    stack.start_pipeline()
    scenario = Scenario(stack.dataverse(), stack.finance())
    components = Components(scenario)
    activity: list[str] = []
    state: State | None = None
    with Live(_table(stack, None, activity, "starting"), console=console, refresh_per_second=4) as live:
        if opts.seconds is None:
            done, first = _scripted(scenario)
            activity.extend(done)
            activity.extend(components.make(first))
        else:
            end = time.monotonic() + opts.seconds
            while time.monotonic() < end:
                activity.append(scenario.step())
                live.update(_table(stack, state, activity, "activity"))
                time.sleep(0.25)
        deadline = time.monotonic() + opts.drain_timeout
        while time.monotonic() < deadline:
            # a failure repeated each round is shown once
            activity.extend(line for line in components.tick() if line not in activity[-1:])
            state = components.state()
            live.update(_table(stack, state, activity, "draining"))
            if state.done:
                break
            dead = stack.sup.dead()
            if dead:
                raise ChildFailed(f"{dead[0].name} exited:\n{dead[0].log_tail()}")
            time.sleep(1.0)
        live.update(_table(stack, state, activity, "done"))
    assert state is not None
    if not state.done:
        console.print(f"[red]✗[/red] not everything arrived within {opts.drain_timeout:.0f}s:")
        for line in state.progress.mismatches[:20]:
            console.print(f"  {line}")
        if state.invoices[0] != state.invoices[1]:
            console.print(f"  invoice {components.billing.invoice}: its proposal is not posted, or its sales tax "
                          "is not back on the Dataverse actuals")
        if state.procured[0] != state.procured[1]:
            console.print(f"  {state.procured[1] - state.procured[0]} of the expense report and vendor invoice "
                          "have no actual in Dataverse (not posted, or not brought there)")
        return 1
    console.print(f"[green]✓[/green] everything created arrived on the other side "
                  f"({scenario.expected.total()} records checked field by field)")
    return _reconciled(stack, deadline)


def _reconciled(stack: Stack, deadline: float) -> int:
    """Every map in sync, as `dualwrite reconcile` sees the two systems (the seeded reference data
    included), waiting for the last writes until the drain deadline."""
    from dualwrite.commands.reconcile import report_table

    with console.status("Reconciling both systems map by map ..."):
        while True:
            reports = stack.reconcile()
            drifting = [r.map for r in reports if r.drift]
            if not drifting or time.monotonic() >= deadline:
                break
            time.sleep(3.0)
    console.print(report_table(reports))
    if drifting:
        console.print(f"[red]✗[/red] drift in {', '.join(drifting)} (`dualwrite reconcile --json FILE` "
                      "lists the keys)")
        return 1
    console.print(f"[green]✓[/green] reconcile: all {len(reports)} maps in sync")
    return 0
