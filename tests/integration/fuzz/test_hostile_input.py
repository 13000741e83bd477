"""The live pipeline takes 10,000 malformed or hostile records mixed into normal traffic.

Malformed records go straight into the CDC topics the worker reads (tests/support/hostile.py
lists the classes); hostile but valid project numbers and customer accounts (quotes, ``%``,
``#``, ``?``, ``/``, ``\\``, non-Latin-1, CR/LF) enter the real way, through the emulators' APIs,
and are renamed once they arrived so the sinks address them by key. End state (issue 8): no
process restarted, every bad record in ``sync.dlq`` exactly once with a reason, every good
record applied exactly once with the right values, no row written that no record named. The
per-class counts are printed (``-s``) and written to ``fuzz-summary.json`` in the test's tmp dir.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from connectors.common.kafka import KafkaConfig, read_records
from dualwrite.apiclient import ApiSession
from dualwrite.scenario import Scenario
from streams.maps import default_registry
from tests.integration.fuzz.conftest import FuzzStack
from tests.support.hostile import Context, Hostile, generate
from tests.support.ledger import Ledger, Tracked, table, target_value
from tests.support.pipeline import caught_up, exit_reasons
from topics import cdc_topic

pytestmark = pytest.mark.integration

SEED = 20261201
DRAIN = 420.0
WORKER_GROUP = "dualwrite-streams"
SINK_GROUPS = {"finance": "dualwrite-sink-finance", "dataverse": "dualwrite-sink-dataverse"}

# Scenario prefixes: project numbers are "<prefix>-00001", customer accounts "<prefix>C-00001".
# None is a prefix of another (each scenario's check reads the rows starting with its prefix).
HOSTILE_PREFIXES = ("Q'", "Q%2D", "R%", "Q#", "Q?x=", "Q/", "Q\\", "Łódź", "€", "Q&$top=",
                    "Q +", "Q(,)=", "日本")
# What a key that lost its encoding would address instead: "Q%2D-00001" decoded is "Q--00001".
VICTIM_PREFIX = "Q-"
# Keys with line breaks: the sink must refuse them (header injection), one dead letter each.
CONTROL_PREFIXES = ("Q\r\nX:", "Q\nCallerID:")


def worker_topics() -> tuple[str, ...]:
    return tuple(cdc_topic(sy, ta) for sy, ta in default_registry().cdc_tables())  # type: ignore[arg-type]


def finance_rows(fo: ApiSession) -> dict[str, dict[str, dict[str, Any]]]:
    """usmf rows of the entities the pipeline writes in Finance, by `target_value`."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for entity in ("ProjectsV2", "ProjectTasks"):
        rows = fo.get_all(entity, {"cross-company": "true"})
        keys = ("ProjectId",) if entity == "ProjectsV2" else ("ProjectId", "Task")
        out[entity] = {target_value({k: r[k] for k in keys}): _plain(r) for r in rows
                       if r["dataAreaId"] == "usmf"}
    return out


def dataverse_rows(dv: ApiSession) -> dict[str, dict[str, dict[str, Any]]]:
    rows = dv.get_all("accounts", {"$select": "accountnumber,name"})
    return {"accounts": {str(r["accountnumber"]): _plain(r) for r in rows}}


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """The row's values without OData annotations (etags)."""
    return {k: v for k, v in row.items() if not k.startswith("@")}


def all_rows(stack: Any) -> dict[str, dict[str, dict[str, Any]]]:
    return {**finance_rows(stack.finance()), **dataverse_rows(stack.dataverse())}


def settled(bootstrap: str) -> bool:
    return (caught_up(bootstrap, WORKER_GROUP, list(worker_topics()))
            and all(caught_up(bootstrap, g, [f"sync.commands.{t}"]) for t, g in SINK_GROUPS.items()))


def dlq_size(bootstrap: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "fuzz-dlq-size"})
    try:
        parts = consumer.list_topics("sync.dlq", timeout=10).topics["sync.dlq"].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition("sync.dlq", p), timeout=10)[1]
                   for p in parts)
    finally:
        consumer.close()


def wait_until(predicate: Any, timeout: float, interval: float = 5.0) -> bool:
    """Like `wait_for`, but a time-out is a finding to report, not an exception."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:  # an API or Kafka hiccup while polling: ask again
            pass
        time.sleep(interval)
    return False


class Injector:
    """Produces hostile records and records where each landed (or why Kafka refused it)."""

    def __init__(self, bootstrap: str, ledger: Ledger) -> None:
        self.producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                                  "linger.ms": 20})
        self.ledger = ledger

    def send(self, h: Hostile) -> None:
        tracked = self.ledger.add(Tracked(
            h.cls, h.what, h.expect, h.source_id,
            ("ProjectsV2", h.finance_project) if h.finance_project else None, h.fields))

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                tracked.refused = f"kafka: {err.str()}"
            else:
                self.ledger.produced(tracked, msg.topic() or "", msg.partition() or 0, msg.offset() or 0)

        while True:
            try:
                self.producer.produce(h.topic, key=h.key, value=h.value, on_delivery=delivered)
                break
            except BufferError:
                self.producer.poll(0.2)
            except KafkaException as exc:  # e.g. over message.max.bytes: refused on entry
                tracked.refused = f"kafka: {exc.args[0].str()}"
                break
        self.producer.poll(0)

    def flush(self) -> None:
        assert self.producer.flush(120) == 0


def try_step(s: Scenario, action: Any, refused: list[str]) -> None:
    try:
        action()
    except RuntimeError as exc:  # the API refused what a person tried: not the pipeline's business
        refused.append(f"{s.prefix!r}: {exc}")


def track_scenario(ledger: Ledger, cls: str, s: Scenario) -> None:
    """Every row a scenario expects, as a record the pipeline must apply exactly once."""
    for (_, number), fields in s.expected.finance_projects.items():
        ledger.add(Tracked(cls, f"project {number!r}", "applied",
                           target=("ProjectsV2", number), fields=fields))
    for (_, number, wbs), fields in s.expected.finance_tasks.items():
        ledger.add(Tracked(cls, f"task {number!r}/{wbs}", "applied",
                           target=("ProjectTasks", f"{number}/{wbs}"), fields=fields))
    for account, fields in s.expected.dataverse_accounts.items():
        ledger.add(Tracked(cls, f"account {account!r}", "applied",
                           target=("accounts", account), fields=fields))


@pytest.mark.timeout(1200)
def test_ten_thousand_hostile_records_mixed_into_live_traffic(fuzz_stack: FuzzStack,
                                                              tmp_path: Path) -> None:
    stack = fuzz_stack.stack
    bootstrap = stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]
    dv, fo = stack.dataverse(), stack.finance()

    # The seed data has crossed over and the line is quiet: what exists now is "before".
    def seeded() -> bool:
        accounts = dataverse_rows(dv)["accounts"]
        return settled(bootstrap) and all(
            r["CustomerAccount"] in accounts for r in fo.get_all("CustomersV3", {"cross-company": "true"}))
    assert wait_until(seeded, 180), "seed data did not reach Dataverse"
    before = all_rows(stack)
    # Restarts are counted from here: only those during the hostile run can be because of it.
    started = {name: child.starts for name, child in stack.sup.children.items()}
    print(f"\nbefore: {sum(map(len, before.values()))} rows, restarts so far "
          f"{ {n: s - 1 for n, s in started.items() if s > 1} }, at {time.strftime('%H:%M:%S')}",
          flush=True)

    normal = Scenario(dv, fo, prefix="DW", seed=5)
    anchor = normal.create_project()
    for wbs in ("1", "2"):
        normal.create_task(anchor, wbs)
    anchor_id = dv.get_all("msdyn_projects", {"$filter": f"msdyn_projectnumber eq '{anchor}'",
                                              "$select": "msdyn_projectid"})[0]["msdyn_projectid"]
    ctx = Context(topics=worker_topics(), company_id=normal.company_id(),
                  customer_id=normal.customer_id(), project_id=str(anchor_id),
                  now_ms=int(time.time() * 1000))
    hostile = generate(SEED, ctx)

    ledger = Ledger()
    injector = Injector(bootstrap, ledger)
    api_refused: list[str] = []
    hostiles = [Scenario(dv, fo, prefix=p, seed=i) for i, p in enumerate(HOSTILE_PREFIXES)]
    victims = Scenario(dv, fo, prefix=VICTIM_PREFIX, seed=99)
    people = [normal, victims, *hostiles]

    # Phase 1: the hostile records in 20 slices, people working between the slices.
    slices = 20
    for i in range(slices):
        for h in hostile[i * len(hostile) // slices:(i + 1) * len(hostile) // slices]:
            injector.send(h)
        for s in (normal, people[1 + i % (len(people) - 1)]):
            try_step(s, s.step, api_refused)
    for s in people[1:]:  # everyone made at least a project, its tasks and a customer
        try_step(s, s.step, api_refused)
        try_step(s, s.create_customer, api_refused)
    for prefix in CONTROL_PREFIXES:
        s = Scenario(dv, fo, prefix=prefix, seed=7)
        for kind, make in (("ProjectsV2", s.create_project), ("accounts", s.create_customer)):
            try:
                name = make()
            except RuntimeError as exc:
                ledger.add(Tracked("control_char_key_api", f"{kind} {prefix!r}", "dlq",
                                   refused=f"api: {exc}"))
                continue
            ledger.add(Tracked("control_char_key_api", f"{kind} {name!r}", "dlq",
                               target=(kind, name)))
    injector.flush()

    # Phase 2: once the first wave arrived, rename every project so the sinks address the
    # existing rows by key (PATCH by key URL), and keep the normal traffic going.
    wait_until(lambda: settled(bootstrap) and all(s.progress().done for s in people), 240, 10)
    print(f"\nphase 1 done at {time.strftime('%H:%M:%S')}", flush=True)
    for s in people:
        for (_, number) in list(s.expected.finance_projects):
            try_step(s, lambda s=s, n=number: s.rename_project(n, f"Renamed {n}"), api_refused)
    for _ in range(5):
        normal.step()

    expected_letters = sum(1 for r in ledger.records if r.expect == "dlq" and r.refused is None)
    drained = wait_until(lambda: (dlq_size(bootstrap) >= expected_letters
                                  and settled(bootstrap)
                                  and all(s.progress().done for s in people)), DRAIN, 10)
    print(f"drained={drained} at {time.strftime('%H:%M:%S')}", flush=True)
    time.sleep(5)  # anything still in flight would be a duplicate: give it the chance to show

    # -- what became of everything -------------------------------------------------------
    track_scenario(ledger, "normal_traffic", normal)
    track_scenario(ledger, "victim_rows", victims)
    for s in hostiles:
        track_scenario(ledger, "hostile_key_api", s)
    letters = read_records(KafkaConfig(bootstrap_servers=bootstrap), "sync.dlq", timeout=120)
    ledger.attribute(letters)
    after = all_rows(stack)
    for entity, rows in after.items():
        ledger.rows(entity, rows)
    restarts = {name: child.starts - started[name] for name, child in stack.sup.children.items()}
    summary = ledger.summary(restarts)
    summary["restarts_before_the_run"] = {n: s - 1 for n, s in started.items()}

    allowed = {r.target for r in ledger.records if r.target and r.expect in ("applied", "either")}
    strays = {entity: sorted(repr(k) for k in rows.keys() - before[entity].keys()
                             if (entity, k) not in allowed)
              for entity, rows in after.items()}
    changed = {entity: sorted(repr(k) for k, row in before[entity].items()
                              if after[entity].get(k) != row and (entity, k) not in allowed)
               for entity in before}
    problems = ledger.problems()
    summary |= {"drained": drained, "dlq_records": len(letters),
                "api_refused": api_refused,
                "strays": {k: v[:20] for k, v in strays.items() if v},
                "stray_counts": {k: len(v) for k, v in strays.items() if v},
                "changed_rows": {k: v[:20] for k, v in changed.items() if v},
                "unattributed_examples": ledger.unattributed[:10],
                "problem_examples": {k: v[:8] for k, v in problems.items()},
                "scenario_mismatches": {s.prefix: s.progress().mismatches[:5] for s in people
                                        if not s.progress().done}}
    path = tmp_path / "fuzz-summary.json"
    path.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    print(f"\n{table(summary)} (before the run: {summary['restarts_before_the_run']})\nsummary: {path}")

    failures = []
    if any(restarts.values()):
        failures.append(f"processes restarted during the run: {restarts}, why: {exit_reasons(stack)}")
    failures += [f"{cls}: {len(items)} records wrong, e.g. {items[:4]}" for cls, items in problems.items()]
    if ledger.unattributed:
        failures.append(f"{len(ledger.unattributed)} dead letters no bad record explains, "
                        f"e.g. {ledger.unattributed[:3]}")
    if any(strays.values()):
        failures.append(f"rows no record named: {summary['stray_counts']}, e.g. {summary['strays']}")
    if any(changed.values()):
        failures.append(f"rows changed that no record named: {summary['changed_rows']}")
    if not drained or summary["scenario_mismatches"]:
        failures.append(f"not drained in {DRAIN:.0f}s; scenarios off: {summary['scenario_mismatches']}")
    assert not failures, "\n".join(failures)
