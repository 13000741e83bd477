"""A local Apache Kafka (KRaft), one node or a three-node cluster, from jars resolved by Maven."""

from dualwrite.kafka.broker import BrokerStatus, LocalKafka, LocalKafkaError, UnsupportedLayout
from dualwrite.kafka.classpath import (
    CONSOLE_CONSUMER,
    ClasspathError,
    resolve_classpath,
    tool_command,
)

__all__ = ["CONSOLE_CONSUMER", "BrokerStatus", "ClasspathError", "LocalKafka", "LocalKafkaError",
           "UnsupportedLayout", "resolve_classpath", "tool_command"]
