"""`topics.partitioner`: Kafka's murmur2, bit for bit, and the partitions it gives."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from topics.partitioner import KeyPartitioner, murmur2, partition_of

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("text", "signed"), [
    # Kafka's own test vectors (UtilsTest.testMurmur2), as Java's signed int.
    ("21", -973932308), ("foobar", -790332482), ("a-little-bit-long-string", -985981536),
    ("a-little-bit-longer-string", -1486304829),
    ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971), ("abc", 479470107),
])
def test_murmur2_is_the_java_clients(text: str, signed: int) -> None:
    assert murmur2(text.encode()) == signed & 0xFFFFFFFF


def test_murmur2_agrees_with_aiokafka_on_every_length_and_byte() -> None:
    rng = random.Random(9)
    for length in [*range(0, 40), *(rng.randrange(40, 3000) for _ in range(200))]:
        data = bytes(rng.randrange(256) for _ in range(length))
        assert murmur2(data) == aiokafka_murmur2(data), length


def test_the_partitioner_places_a_key_where_aiokafkas_does() -> None:
    ours, theirs = KeyPartitioner(), DefaultPartitioner()
    rng = random.Random(3)
    for n in (1, 3, 7, 12):
        parts = list(range(n))
        for _ in range(300):
            key = f"present:ProjectsV2(ProjectId='P-{rng.randrange(10**6)}',dataAreaId='usmf')".encode()
            assert ours(key, parts, parts) == theirs(key, parts, parts) == partition_of(key, n)


def test_a_keyless_record_goes_to_an_available_partition() -> None:
    assert KeyPartitioner()(None, [0, 1, 2], [2]) == 2
    assert KeyPartitioner()(None, [0, 1, 2], []) in (0, 1, 2)
