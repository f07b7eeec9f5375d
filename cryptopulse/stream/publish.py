"""Each micro-batch's window records reach the windows topic exactly once.

A batch is written in one Kafka transaction, every record tagged with a header
`cryptopulse-batch: <sink id>:<batch id>`. So:

* a batch that fails half-way (the broker went away, the job was killed) leaves nothing
  visible to consumers (they read committed records only, librdkafka's default), and its
  re-run writes it whole;
* a batch committed just before the job was killed, whose sink state was not saved yet,
  is recognised after the restart: the newest committed batch id of this sink is read back
  from the topic (every record written since the sink last saved its state, and at least the
  last `TAIL_RECORDS` of each partition), and a re-run of that batch or an older one is not
  written again. Other writers share the topic (the producer's backfill windows), so the
  records after this sink's newest batch can be many.

The transactional id is derived from the sink id (one per checkpoint), so a restarted job
fences its killed predecessor and aborts whatever transaction it left open.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from cryptopulse.config import KafkaSecurity
from cryptopulse.kafka_client import librdkafka_config
from cryptopulse.kafka_link import QUIET_CLIENT_LOG

log = logging.getLogger("cryptopulse.stream.publish")

BATCH_HEADER = "cryptopulse-batch"
TAIL_RECORDS = 500
"""Records read back from the end of each partition at least."""
CLOCK_MARGIN_S = 300.0
"""Read back from this long before the sink's last save: record timestamps come from the
writer's clock, which may differ from this host's."""


class KafkaDeliveryError(RuntimeError):
    """Window records the broker did not take; the batch fails and Spark runs it again."""


def sink_id(checkpoint: str) -> str:
    """A stable id for one sink: the same checkpoint, the same id, across restarts."""
    return hashlib.sha256(checkpoint.encode()).hexdigest()[:16]


def parse_header(value: bytes | str | None, sink: str) -> int | None:
    """The batch id in a `cryptopulse-batch` header written by `sink`, else None."""
    if value is None:
        return None
    text = value.decode(errors="replace") if isinstance(value, bytes) else value
    owner, _, batch = text.rpartition(":")
    if owner != sink or not batch.isdigit():
        return None
    return int(batch)


class BatchPublisher:
    """Writes a batch's records to one topic in a transaction; knows the newest batch id
    this sink committed there (read once after a start, then kept up to date)."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        sink: str,
        *,
        timeout: float = 30.0,
        security: KafkaSecurity | None = None,
        extra_config: dict[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.sink = sink
        self.timeout = timeout
        self._security = librdkafka_config(security)
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "transactional.id": f"cryptopulse-windows-{sink}",
                "enable.idempotence": True,
                "acks": "all",
                "compression.type": "lz4",
                "linger.ms": 5,
                "transaction.timeout.ms": int(timeout * 2000),
                "log_level": QUIET_CLIENT_LOG,  # connection failures fail the batch instead
                **self._security,
                **(extra_config or {}),
            }
        )
        self._ready = False
        self._committed: int | None = None

    def start(self) -> None:
        """Fence an earlier instance of this sink (aborting its open transaction)."""
        if not self._ready:
            self.producer.init_transactions(self.timeout)
            self._ready = True

    def committed(self, since: Callable[[], float | None] | None = None) -> int:
        """The newest batch id this sink committed to the topic (-1 for none). `since` gives
        when (epoch seconds) the sink last saved its state, None for never; every batch it
        committed later is in the records read back. It is asked only for that read, once
        (on HDFS or S3 it is a remote call)."""
        if self._committed is None:
            self.start()
            self._committed = self._read_committed(since() if since else None)
            if self._committed >= 0:
                log.info("the newest batch already on %s is %d", self.topic, self._committed)
        return self._committed

    def publish(self, batch_id: int, records: Sequence[tuple[str, bytes]]) -> None:
        """All of `records` become visible together, or none of them (then it raises)."""
        self.start()
        header: list[tuple[str, str | bytes | None]] = [
            (BATCH_HEADER, f"{self.sink}:{batch_id}".encode())
        ]
        producer = self.producer
        try:
            producer.begin_transaction()
            for key, value in records:
                while True:
                    try:
                        producer.produce(self.topic, key=key, value=value, headers=header)
                        break
                    except BufferError:
                        producer.poll(0.05)
            producer.commit_transaction(self.timeout)
        except KafkaException as exc:
            self._abort()
            raise KafkaDeliveryError(
                f"batch {batch_id}: {len(records)} windows not written to {self.topic}: "
                f"{exc.args[0].str() if exc.args else exc}"
            ) from exc
        self._committed = batch_id

    def _abort(self) -> None:
        try:
            self.producer.abort_transaction(self.timeout)
        except KafkaException as exc:
            # A fatal state (fenced, broker gone for long): the job exits and restarts.
            log.warning("could not abort the windows transaction: %s", exc)

    def close(self) -> None:
        self.producer.flush(5)

    def _start_offsets(
        self, consumer: Consumer, partitions: list[int], since: float | None
    ) -> list[TopicPartition]:
        """Per partition: from the first record written since `since` (less the clock margin),
        or the last TAIL_RECORDS, whichever is earlier."""
        by_time: dict[int, int] = {}
        if since is not None:
            at_ms = int((since - CLOCK_MARGIN_S) * 1000)
            wanted = [TopicPartition(self.topic, p, at_ms) for p in partitions]
            found = consumer.offsets_for_times(wanted, timeout=self.timeout)
            by_time = {tp.partition: tp.offset for tp in found}
        starts = []
        for p in partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(self.topic, p), timeout=self.timeout
            )
            start = high - TAIL_RECORDS
            if by_time.get(p, -1) >= 0:  # -1: nothing written since then
                start = min(start, by_time[p])
            starts.append(TopicPartition(self.topic, p, max(low, start)))
        return starts

    def _read_committed(self, since: float | None) -> int:
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"cryptopulse-sink-check-{uuid.uuid4().hex[:8]}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "log_level": QUIET_CLIENT_LOG,
                **self._security,
            }
        )
        try:
            metadata = consumer.list_topics(self.topic, timeout=self.timeout)
            partitions = list(metadata.topics[self.topic].partitions)
            consumer.assign(self._start_offsets(consumer, partitions, since))
            newest = -1
            at_end: set[int] = set()
            deadline = time.monotonic() + self.timeout
            while len(at_end) < len(partitions):
                if time.monotonic() > deadline:
                    raise KafkaDeliveryError(f"could not read the end of {self.topic} in time")
                for message in consumer.consume(500, timeout=0.5):
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            at_end.add(message.partition() or 0)
                        continue
                    headers: list[tuple[str, bytes | None]] = message.headers() or []  # type: ignore[assignment]
                    for key, value in headers:
                        if key == BATCH_HEADER:
                            found = parse_header(value, self.sink)
                            if found is not None:
                                newest = max(newest, found)
            return newest
        finally:
            consumer.close()
