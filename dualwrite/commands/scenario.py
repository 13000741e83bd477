"""`dualwrite scenario`: realistic Project Operations activity against both APIs (`dualwrite.activity`).

The APIs are the configured ones (``DUALWRITE_DATAVERSE__*``, ``DUALWRITE_FINANCE__*``: the local
emulators by default), with the sinks' identity, as `dualwrite reconcile` reads them. Exit 0 when
the plan was made (or ``--seconds`` ran out), 1 when an API refused a write, 2 with one line when
an API cannot be reached, refuses the credentials or holds nothing to work on; also 1 when a
project Finance must hold before an expense or vendor invoice is posted on it never arrives
(the pipeline is not running: `dualwrite.activity_run.NotArrived`). Finance's
periodic jobs (`dualwrite.finance_jobs`) run every ``JOBS_EVERY_S`` during the run and once at
its end, so approved time becomes posted journals with their vouchers (a job Finance refuses:
exit 1).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dualwrite.activity import Order, SizeName

app = typer.Typer(help="Make realistic Project Operations changes in Dataverse and Finance.",
                  add_completion=False)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

# "A prerequisite arriving minutes late": two minutes, or a quarter of a shorter run.
LATE_S = 120.0
# Finance's periodic jobs (import from staging, post the journals): every 30 s and at the end.
JOBS_EVERY_S = 30.0


@app.callback(invoke_without_command=True)
def scenario(
    seed: Annotated[int, typer.Option(min=0, max=99999, help="Same seed and same starting data: "
                                      "the same requests. Rows made carry it (S<seed>-...).")] = 1,
    rate: Annotated[float, typer.Option(min=0, help="Changes per second; 0 = as fast as the APIs "
                                        "answer.")] = 0.0,
    size: Annotated[SizeName, typer.Option(help="How much: small (a handful of each kind), "
                                           "medium, large (hundreds of changes per kind).")] = SizeName.small,
    seconds: Annotated[float | None, typer.Option(min=0.1, help="Stop after this many seconds even "
                                                  "if the plan is not done.")] = None,
    order: Annotated[Order, typer.Option(help="natural: parents before children, one company at a "
                                         "time; adversarial: children before parents, bursts, "
                                         "interleaved companies, a project arriving late.")] = Order.natural,
) -> None:
    """Finance sets up legal entities, rates, customers, vendors, workers and units; project
    managers create categories, roles, contracts with lines, milestones and funding sources,
    projects with work breakdowns, then edit, close and delete; their team assigns resources and
    logs time, approved into actuals; Finance posts expense reports and vendor invoices on the
    projects once they are there; Finance's periodic jobs import and post the actuals. `dualwrite
    reconcile` checks what the pipeline made of it."""
    from dualwrite.activity import Op, ScenarioError, plan, summary
    from dualwrite.activity_run import NotArrived, Refused, read_world, run
    from dualwrite.apiclient import ApiError
    from dualwrite.finance_jobs import FinanceJobFailed, Schedule
    from dualwrite.reconcile import api_sessions
    from dualwrite.settings import Settings

    sessions = api_sessions(Settings())
    late_s = LATE_S if seconds is None else min(LATE_S, seconds / 4)
    try:
        world, ids = read_world(sessions)
        ops = plan(world, seed, size, order)
        with Progress(TextColumn("scenario"), BarColumn(), MofNCompleteColumn(), TextColumn("changes"),
                      TimeElapsedColumn(), console=err, transient=True) as progress:
            task = progress.add_task("changes", total=len(ops))
            jobs = Schedule(sessions["finance"], JOBS_EVERY_S)

            def changed(op: Op) -> None:
                progress.advance(task)
                jobs.tick()

            done = run(ops, sessions, ids, seed=seed, rate=rate, seconds=seconds, late_s=late_s,
                       on_change=changed)
            jobs.run()
    except (ScenarioError, ApiError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1 if isinstance(exc, (Refused, NotArrived, FinanceJobFailed)) else 2) from None
    finally:
        for session in sessions.values():
            session.close()
    out.print(f"scenario seed {seed} ({order.value}, {size.value}): {len(done)} of {len(ops)} changes: "
              f"{summary(done)}; {jobs.summary()}")
