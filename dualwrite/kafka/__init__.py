"""A local Apache Kafka (KRaft), one node or a three-node cluster, from jars resolved by Maven."""

from dualwrite.kafka.broker import BrokerStatus, LocalKafka, LocalKafkaError, UnsupportedLayout
from dualwrite.kafka.classpath import ClasspathError, resolve_classpath

__all__ = ["BrokerStatus", "ClasspathError", "LocalKafka", "LocalKafkaError", "UnsupportedLayout",
           "resolve_classpath"]
