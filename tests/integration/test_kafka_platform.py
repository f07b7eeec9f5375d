"""The local broker, for real: produce/consume, durability across a restart, Spark reads it."""

from __future__ import annotations

import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import ConfigResource, ResourceType  # type: ignore[attr-defined]

from cryptopulse.errors import CryptoPulseError
from cryptopulse.platform.kafka import KafkaAlreadyRunning, LocalKafka
from cryptopulse.platform.ports import free_port

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.integration

RECORDS = 1000
KEYS = [f"coin-{i}" for i in range(10)]


def _produce(bootstrap: str, topic: str) -> dict[str, list[int]]:
    """1,000 keyed JSON records; returns each key's sequence numbers in send order."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5}
    )
    sent: dict[str, list[int]] = defaultdict(list)
    for seq in range(RECORDS):
        key = KEYS[seq % len(KEYS)]
        producer.produce(topic, key=key, value=orjson.dumps({"key": key, "seq": seq}))
        sent[key].append(seq)
    assert producer.flush(30) == 0
    return sent


def _consume_all(bootstrap: str, topic: str, group: str, expected: int) -> dict[str, list[int]]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    got: dict[str, list[int]] = defaultdict(list)
    count = 0
    try:
        for _ in range(600):
            for msg in consumer.consume(num_messages=500, timeout=0.5):
                assert msg.error() is None, msg.error()
                record = orjson.loads(msg.value())
                assert msg.key().decode() == record["key"]
                got[record["key"]].append(record["seq"])
                count += 1
            if count >= expected:
                break
    finally:
        consumer.close()
    return got


@pytest.fixture(scope="module")
def filled_topic(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> tuple[str, dict[str, list[int]]]:
    topic = new_topic("platform", partitions=3)
    return topic, _produce(kafka_bootstrap, topic)


def test_records_come_back_in_order_per_key(
    kafka_bootstrap: str, filled_topic: tuple[str, dict[str, list[int]]], group_id: str
) -> None:
    topic, sent = filled_topic
    got = _consume_all(kafka_bootstrap, topic, group_id, RECORDS)
    assert sum(len(v) for v in got.values()) == RECORDS
    assert got == sent  # every key's records, in the order they were produced


def _topic_config(broker: LocalKafka, topic: str) -> dict[str, str]:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    admin = broker.admin()  # must outlive its futures
    deadline = time.monotonic() + 30
    while True:  # a topic just created may not be known to every part of the broker yet
        try:
            entries = admin.describe_configs([resource])[resource].result(timeout=30)
            return {key: entry.value for key, entry in entries.items()}
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_configured_topics_exist_with_their_settings(kafka_broker: LocalKafka) -> None:
    assert set(kafka_broker.topic_names) <= kafka_broker.topics()
    ticks, status = kafka_broker.topic_names[0], kafka_broker.topic_names[-1]
    assert _topic_config(kafka_broker, ticks)["max.message.bytes"] == str(256 * 1024)
    assert _topic_config(kafka_broker, status)["cleanup.policy"] == "compact"


def test_a_topic_made_earlier_gets_todays_settings(kafka_broker: LocalKafka) -> None:
    name = f"old-status-{uuid.uuid4().hex[:8]}"
    plain = replace(kafka_broker, topic_configs=())
    plain.create_topics([name])  # as an earlier version made it: no settings of its own
    assert _topic_config(kafka_broker, name)["cleanup.policy"] == "delete"
    upgraded = replace(kafka_broker, topic_configs=((name, (("cleanup.policy", "compact"),)),))
    upgraded.create_topics([name])
    assert _topic_config(kafka_broker, name)["cleanup.policy"] == "compact"


def test_second_start_says_it_is_running(kafka_broker: LocalKafka) -> None:
    with pytest.raises(KafkaAlreadyRunning, match="already running"):
        kafka_broker.start()
    assert kafka_broker.running()


def test_port_in_use_is_reported_before_starting(kafka_broker: LocalKafka, tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        other = replace(kafka_broker, data_dir=tmp_path, port=taken, controller_port=free_port())
        with pytest.raises(
            CryptoPulseError, match=rf"Port {taken} .* in use.*CRYPTOPULSE_KAFKA__PORT"
        ):
            other.start()
    assert not other.running()


def test_records_survive_a_restart(
    kafka_broker: LocalKafka, filled_topic: tuple[str, dict[str, list[int]]], group_id: str
) -> None:
    topic, sent = filled_topic
    old_pid = kafka_broker.pid()
    kafka_broker.stop()
    assert not kafka_broker.running()
    kafka_broker.start()
    assert kafka_broker.pid() not in (None, old_pid)
    got = _consume_all(kafka_broker.bootstrap, topic, group_id, RECORDS)
    assert got == sent


def test_spark_batch_query_reads_the_topic(
    spark: SparkSession, kafka_bootstrap: str, filled_topic: tuple[str, dict[str, list[int]]]
) -> None:
    from pyspark.sql import functions as F

    topic, sent = filled_topic
    frame = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", kafka_bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("endingOffsets", "latest")
        .load()
    )
    assert frame.count() == RECORDS
    per_key = {
        row["key"]: row["n"]
        for row in frame.groupBy(F.col("key").cast("string").alias("key"))
        .agg(F.count("*").alias("n"))
        .collect()
    }
    assert per_key == {key: len(seqs) for key, seqs in sent.items()}
