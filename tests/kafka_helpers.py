"""Small Kafka helpers for tests: send records, read a topic until a condition holds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer


def send(bootstrap: str, topic: str, values: list[tuple[str | None, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for key, value in values:
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
        self, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 90
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msg in self.consumer.consume(100, timeout=0.5):
                if msg.error() is None:
                    self.values.append(orjson.loads(msg.value()))
            if done(self.values):
                return self.values
        raise AssertionError(f"timed out; have {len(self.values)} records: {self.values[-5:]}")

    def close(self) -> None:
        self.consumer.close()
