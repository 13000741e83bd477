"""A local single-node Apache Kafka (KRaft) from jars resolved by Maven."""

from dualwrite.kafka.broker import BrokerStatus, LocalKafka, LocalKafkaError
from dualwrite.kafka.classpath import ClasspathError, resolve_classpath

__all__ = ["BrokerStatus", "ClasspathError", "LocalKafka", "LocalKafkaError", "resolve_classpath"]
