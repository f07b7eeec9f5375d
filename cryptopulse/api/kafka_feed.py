"""Reads the windows topic and the source-status topic into the API server.

Every API server (replicas, and the one `cryptopulse up` starts) joins a consumer group
of its own, so each sees every record. On start it rebuilds what Kafka already holds:
each windows partition is rewound to the records of the last `replay_seconds` (at most
`replay_records` of them), so a restarted server comes back with the same history; the
status topic (compacted, key = source) is read from its beginning, so the server knows
every source's latest status at once. The consumer runs in a thread and hands validated
batches to the event loop; malformed records, and windows refused by admission (see
admission.py: inconsistent, wrong length, too far in the future), are counted and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from cryptopulse.api.admission import Admission
from cryptopulse.api.kafka_records import Decoded, decode
from cryptopulse.api.metrics import ApiMetrics
from cryptopulse.config import KafkaSecurity
from cryptopulse.kafka_client import REFUSALS, librdkafka_config
from cryptopulse.kafka_link import QUIET_CLIENT_LOG, KafkaLink
from cryptopulse.schema import SourceStatus, WindowAggregate

log = logging.getLogger(__name__)

OnRecords = Callable[[list[WindowAggregate], str], object]
OnStatuses = Callable[[list[SourceStatus], str], object]


def replica_group_id() -> str:
    """A consumer group of this process alone."""
    return f"cryptopulse-api-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class KafkaFeed:
    def __init__(
        self,
        *,
        bootstrap: str,
        topic: str,
        on_records: OnRecords,
        metrics: ApiMetrics,
        status_topic: str | None = None,
        on_statuses: OnStatuses | None = None,
        admission: Admission | None = None,
        replay_seconds: float = 7200.0,
        replay_records: int = 100_000,
        group_id: str | None = None,
        batch_size: int = 500,
        poll_timeout: float = 0.2,
        security: KafkaSecurity | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.security = security
        self.topic = topic
        self.status_topic = status_topic
        self.group_id = group_id or replica_group_id()
        self.replay_seconds = replay_seconds
        self.replay_records = replay_records
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self._on_records = on_records
        self._on_statuses = on_statuses
        self._metrics = metrics
        self._admission = admission
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.assigned = threading.Event()
        """Set once partitions are assigned (and rewound)."""
        self.last_error = ""
        self._refusal = ""
        self.link = KafkaLink(bootstrap, log, while_away="reconnecting")

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start consuming; batches are delivered by `loop.call_soon_threadsafe`."""
        if self._thread is not None:
            raise RuntimeError("consumer already started")
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="kafka-feed", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def topics(self) -> list[str]:
        return [self.topic] + ([self.status_topic] if self.status_topic else [])

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        since_ms = int((time.time() - self.replay_seconds) * 1000)
        windows = [p for p in partitions if p.topic == self.topic]
        if windows and self.replay_records:
            wanted = [TopicPartition(p.topic, p.partition, since_ms) for p in windows]
            by_time = {
                p.partition: p.offset for p in consumer.offsets_for_times(wanted, timeout=10)
            }
            for partition in windows:
                low, high = consumer.get_watermark_offsets(partition, timeout=10, cached=False)
                start = by_time.get(partition.partition, high)
                start = high if start < 0 else start  # nothing that recent: from the end
                partition.offset = max(low, start, high - self.replay_records)
        else:
            for partition in windows:
                partition.offset = OFFSET_END
        for partition in partitions:
            if partition.topic != self.topic:
                partition.offset = OFFSET_BEGINNING  # compacted: the latest per source
        consumer.assign(partitions)
        self.assigned.set()
        log.info(
            "consuming %s from %d partition(s) as %s",
            " and ".join(self.topics),
            len(partitions),
            self.group_id,
        )

    def _on_error(self, err: KafkaError) -> None:
        if err.code() in REFUSALS:
            # Credentials or a certificate the broker refuses: retried (they may be fixed on
            # the broker's side), but said once until records arrive.
            if err.name() != self._refusal:
                self._refusal = err.name()
                log.error("Kafka refused this client (check kafka.security): %s", err.str())
            self.last_error = err.str()
            return
        if not self.link.on_error(err):
            log.warning("Kafka: %s", err.str())
        self.last_error = err.str()

    def _run(self) -> None:
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "group.id": self.group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "latest",
            "client.id": self.group_id,
            "error_cb": self._on_error,
            "log_level": QUIET_CLIENT_LOG,
            "reconnect.backoff.max.ms": 2000,
            **librdkafka_config(self.security),
        }
        consumer = Consumer(config)
        try:
            consumer.subscribe(self.topics, on_assign=self._on_assign)
            while not self._stop.is_set():
                messages = consumer.consume(self.batch_size, self.poll_timeout)
                if messages and (self.link.away_since is not None or self._refusal):
                    self.link.answered()
                    self.last_error = self._refusal = ""
                self._deliver(messages)
        except KafkaException as exc:
            self.last_error = str(exc)
            log.error("Kafka consumer stopped: %s", exc)
        finally:
            consumer.close()

    def _deliver(self, messages: list[Message]) -> None:
        """Decode a batch (kafka_records.py), count it, and hand it to the event loop."""
        good = []
        for message in messages:
            error = message.error()
            if error is None:
                good.append(message)
            elif error.code() != KafkaError._PARTITION_EOF:
                self.last_error = str(error)
                log.warning("%s: %s", message.topic(), error)
        batch = decode(good, self.topic, self._admission, datetime.now(UTC))
        self._count(batch)
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if batch.windows:
            loop.call_soon_threadsafe(self._on_records, batch.windows, "kafka")
        if batch.statuses and self._on_statuses is not None:
            loop.call_soon_threadsafe(self._on_statuses, batch.statuses, "kafka")

    def _count(self, batch: Decoded) -> None:
        metrics = self._metrics
        if batch.valid:
            metrics.kafka_records.labels("valid").inc(batch.valid)
        if batch.invalid:
            metrics.kafka_records.labels("invalid").inc(batch.invalid)
        for reason, count in batch.refused.items():
            metrics.rejected_records.labels("kafka", reason).inc(count)
        for topic, why in batch.problems:
            log.warning("skipping a malformed record on %s: %s", topic, why)
        if batch.not_admitted:  # once per batch: a replay can bring thousands
            log.warning(
                "skipping %d window(s) on %s refused by admission (by reason so far: %s)",
                batch.not_admitted,
                self.topic,
                dict(batch.refused),
            )
