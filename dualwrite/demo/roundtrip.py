"""Demo stage: local Kafka up, catalog applied, one sample change event produced and read back."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer
from rich.console import Console

from dualwrite.kafka import ClasspathError, LocalKafka, LocalKafkaError
from dualwrite.settings import Settings
from topics import (
    ChangeEvent,
    apply_topics,
    catalog,
    cdc_topic,
    decode_event,
    decode_key,
    encode,
    encode_key,
)

console = Console()


def sample_event() -> ChangeEvent:
    now = int(time.time() * 1000)
    return ChangeEvent.model_validate({
        "before": None,
        "after": {"msdyn_projectid": str(uuid.uuid4()), "msdyn_projectnumber": "DEMO-1",
                  "msdyn_subject": "Sample project", "statecode": 0},
        "op": "c", "ts_ms": now,
        "source": {"system": "dataverse", "table": "msdyn_projects", "version": "1", "ts_ms": now,
                   "company": "usmf", "txid": str(uuid.uuid4()), "origin": "demo"},
    })


def run_roundtrip(workdir: Path, port: int) -> int:
    settings = Settings()
    kafka = LocalKafka(workdir / "kafka", port=port, heap=settings.local_kafka.heap)
    try:
        with console.status(f"Starting Kafka on {kafka.bootstrap} (first start resolves jars with Maven) ..."):
            started = time.monotonic()
            kafka.up()
        console.print(f"[green]✓[/green] Kafka ready on {kafka.bootstrap} ({time.monotonic() - started:.1f}s)")
    except (LocalKafkaError, ClasspathError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 1
    client = {"bootstrap.servers": kafka.bootstrap}
    report = apply_topics(client, catalog(partitions=settings.topics.partitions))
    console.print(f"[green]✓[/green] topics: {len(report.created)} created, {len(report.present)} present")
    if not report.ok:
        for drift in report.drifts:
            console.print(f"[red]drift[/red] {drift}")
        return 1
    topic = cdc_topic("dataverse", "msdyn_projects")
    event = sample_event()
    record_id = str(event.row["msdyn_projectid"])
    producer = Producer({**client, "enable.idempotence": True})
    producer.produce(topic, key=encode_key(record_id), value=encode(event))
    if producer.flush(30) != 0:
        console.print("[red]error:[/red] the sample event was not acknowledged by Kafka")
        return 1
    consumer = Consumer({**client, "group.id": f"dualwrite-demo-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() or decode_key(msg.key()).id != record_id:
                continue
            back = decode_event(msg.value())
            if back == event:
                console.print(f"[green]✓[/green] sample change event round trip on {topic} "
                              f"(partition {msg.partition()}, offset {msg.offset()}): key and value intact")
                console.print("Kafka keeps running; stop it with "
                              f"`dualwrite kafka down --port {port} --data-dir {kafka.data_dir}`.")
                return 0
    finally:
        consumer.close()
    console.print("[red]error:[/red] the sample event did not come back within 30s")
    return 1
