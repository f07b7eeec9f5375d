"""Small Kafka helpers for tests: send records, read a topic until a condition holds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, Producer


def send(bootstrap: str, topic: str, values: list[tuple[str | None, bytes]]) -> None:
    send_in_steps(bootstrap, topic, [values])


def send_in_steps(bootstrap: str, topic: str, steps: list[list[tuple[str | None, bytes]]]) -> None:
    """Each step's records are on the broker before the next step's are sent, as a producer's
    polls arrive. One burst spanning more event time than a running job's watermark is not like
    that: its partitions are appended one after another, a batch planned in between sees one
    partition's newer ticks without the other's, and the watermark they move drops the other's
    as late."""
    producer = Producer({"bootstrap.servers": bootstrap})
    for step in steps:
        for key, value in step:
            producer.produce(topic, key=key, value=value)
        assert producer.flush(30) == 0


class TopicReader:
    """Reads a topic from the start, accumulating JSON values across calls."""

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        self.consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"}
        )
        self.consumer.subscribe([topic])
        self.values: list[dict[str, Any]] = []

    def until(
        self,
        done: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 90,
        explain: Callable[[list[dict[str, Any]]], str] | None = None,
    ) -> list[dict[str, Any]]:
        """The records read so far, once `done` holds; on timeout, an AssertionError with
        the last records and what `explain` says of them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msg in self.consumer.consume(100, timeout=0.5):
                if msg.error() is None:
                    self.values.append(orjson.loads(msg.value()))
            if done(self.values):
                return self.values
        why = f"\n{explain(self.values)}" if explain else ""
        raise AssertionError(f"timed out; have {len(self.values)} records: {self.values[-5:]}{why}")

    def close(self) -> None:
        self.consumer.close()


def read_to_end(
    bootstrap: str, topic: str, timeout: float = 120
) -> list[tuple[bytes | None, bytes]]:
    """Every committed record's (key, value) on `topic`, from its start to its current end."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"read-{topic}-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    records: list[tuple[bytes | None, bytes]] = []
    at_end: set[int] = set()
    try:
        partitions = len(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        deadline = time.monotonic() + timeout
        while len(at_end) < partitions:
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end")
            for msg in consumer.consume(1000, timeout=0.5):
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(msg.partition() or 0)
                    continue
                value = msg.value()
                assert value is not None
                records.append((msg.key(), value))
    finally:
        consumer.close()
    return records


def read_topic(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every JSON value on `topic`, from its start to its current end."""
    return [orjson.loads(value) for _, value in read_to_end(bootstrap, topic)]
