"""Operations behind `dualwrite maps` and `dualwrite dlq`: pure functions (rows, filters,
summaries, plans) and small Kafka helpers built on `connectors.common.kafka`.

The Typer commands in `dualwrite.commands` only parse options, call these and print.
"""

from dualwrite.ops.errors import KafkaUnreachable, OpsError, TopicMissing

__all__ = ["KafkaUnreachable", "OpsError", "TopicMissing"]
