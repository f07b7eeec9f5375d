"""Reads window aggregates from the windows topic into the API server (for replicas).

Each server process joins its own consumer group, so every replica sees every
update. On start each partition is rewound by `replay` records, so a new replica
has recent history for its first clients. The consumer runs in a thread and hands
validated batches to the event loop; malformed records are counted and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable

from confluent_kafka import (
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from pydantic import TypeAdapter, ValidationError

from cryptopulse.api.metrics import ApiMetrics
from cryptopulse.schema import WindowAggregate

log = logging.getLogger(__name__)

_adapter: TypeAdapter[WindowAggregate] = TypeAdapter(WindowAggregate)

OnRecords = Callable[[list[WindowAggregate], str], object]


def replica_group_id() -> str:
    """A consumer group of this process alone."""
    return f"cryptopulse-api-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class WindowsConsumer:
    def __init__(
        self,
        *,
        bootstrap: str,
        topic: str,
        on_records: OnRecords,
        metrics: ApiMetrics,
        replay: int = 2000,
        group_id: str | None = None,
        batch_size: int = 500,
        poll_timeout: float = 0.2,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.group_id = group_id or replica_group_id()
        self.replay = replay
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self._on_records = on_records
        self._metrics = metrics
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.assigned = threading.Event()
        """Set once partitions are assigned (and rewound)."""
        self.last_error = ""

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start consuming; batches are delivered by `loop.call_soon_threadsafe`."""
        if self._thread is not None:
            raise RuntimeError("consumer already started")
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="windows-consumer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for partition in partitions:
            if self.replay:
                low, high = consumer.get_watermark_offsets(partition, timeout=10, cached=False)
                partition.offset = max(low, high - self.replay)
            else:
                partition.offset = OFFSET_END
        consumer.assign(partitions)
        self.assigned.set()
        log.info(
            "consuming %s from %d partition(s) as %s", self.topic, len(partitions), self.group_id
        )

    def _run(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": self.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "latest",
                "client.id": self.group_id,
            }
        )
        try:
            consumer.subscribe([self.topic], on_assign=self._on_assign)
            while not self._stop.is_set():
                messages = consumer.consume(self.batch_size, self.poll_timeout)
                records = self._decode(messages)
                if records and self._loop is not None and not self._loop.is_closed():
                    self._loop.call_soon_threadsafe(self._on_records, records, "kafka")
        except KafkaException as exc:
            self.last_error = str(exc)
            log.error("windows consumer stopped: %s", exc)
        finally:
            consumer.close()

    def _decode(self, messages: list[Message]) -> list[WindowAggregate]:
        records: list[WindowAggregate] = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    self.last_error = str(error)
                    log.warning("windows topic: %s", error)
                continue
            value = message.value()
            try:
                if value is None:
                    raise ValueError("a record without a value")
                records.append(_adapter.validate_json(value))
            except (ValidationError, ValueError) as exc:
                self._metrics.kafka_records.labels("invalid").inc()
                log.warning("skipping a malformed record on %s: %s", self.topic, _reason(exc))
                continue
            self._metrics.kafka_records.labels("valid").inc()
        return records


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False)[0]
        return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
    return str(exc)
