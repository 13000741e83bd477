"""A sample change event produced and read back: proves the broker and the envelope work."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping

from confluent_kafka import Consumer, Producer

from topics import ChangeEvent, cdc_topic, decode_event, decode_key, encode, encode_key

SMOKE_TABLE = "msdyn_projects"


def sample_event() -> ChangeEvent:
    now = int(time.time() * 1000)
    return ChangeEvent.model_validate({
        "before": None,
        "after": {"msdyn_projectid": str(uuid.uuid4()), "msdyn_projectnumber": "SMOKE-1",
                  "msdyn_subject": "Sample project", "statecode": 0},
        "op": "c", "ts_ms": now,
        "source": {"system": "dataverse", "table": SMOKE_TABLE, "version": "1", "ts_ms": now,
                   "company": "usmf", "txid": str(uuid.uuid4()), "origin": "dualwrite-demo"},
    })


def roundtrip(client: Mapping[str, str], timeout: float = 30.0) -> ChangeEvent | None:
    """Produce a sample event to a scratch topic and read it back; the event, or None."""
    topic = "dualwrite.smoke." + cdc_topic("dataverse", SMOKE_TABLE)
    event = sample_event()
    record_id = str(event.row["msdyn_projectid"])
    producer = Producer({**client, "enable.idempotence": True})
    producer.produce(topic, key=encode_key(record_id), value=encode(event))
    if producer.flush(timeout) != 0:
        return None
    consumer = Consumer({**client, "group.id": f"dualwrite-smoke-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() or decode_key(msg.key()).id != record_id:
                continue
            back = decode_event(msg.value())
            return back if back == event else None
    finally:
        consumer.close()
    return None
