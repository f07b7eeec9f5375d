"""Where each micro-batch goes: window aggregates to the windows topic and the API's /ingest,
dead letters to the dead-letter topic.

A batch is published once: it is written in one Kafka transaction (see publish.py), and
the last published batch id is saved (with the open windows, see finals.py) next to the
query's checkpoint, so a batch that Spark re-runs after a crash (same id) is skipped rather
than sent twice, even when the crash came between the commit and the save. Spark aggregates
the batch (a few rows per window, read through Arrow); the driver's work is per window, never
per tick.

Dead letters are best effort by design: a dead letter that cannot be written is counted
and logged, and never fails its batch (a failing batch stops its query, and a dead letter
is not worth stopping the job for).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
import orjson
from confluent_kafka import KafkaException, Producer
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)

from cryptopulse.config import KafkaSecurity
from cryptopulse.kafka_client import librdkafka_config
from cryptopulse.stream.finals import FinalTracker, Partial
from cryptopulse.stream.merge import STATE_FIELDS, WindowState
from cryptopulse.stream.publish import BatchPublisher
from cryptopulse.stream.storage import CheckpointPath, modified_at, write_state
from cryptopulse.stream.window import PartialWindows

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger("cryptopulse.stream.sink")


@dataclass
class SinkStats:
    """Running totals, read by the progress logger."""

    windows_published: int = 0
    finals_published: int = 0
    batches_skipped: int = 0
    posts_given_up: int = 0
    dead_letters_published: int = 0
    dead_letters_failed: int = 0
    late_ticks: int = 0
    emitted_by_batch: dict[tuple[str, int], int] = field(default_factory=dict)
    late_by_batch: dict[tuple[str, int], int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return isinstance(exc, httpx.TransportError)


def chunk_records(records: list[bytes], max_bytes: int) -> Iterator[list[bytes]]:
    """Split records into groups whose `{"data":[...]}` body stays under max_bytes."""
    group: list[bytes] = []
    size = 12
    for record in records:
        if group and size + len(record) + 1 > max_bytes:
            yield group
            group, size = [], 12
        group.append(record)
        size += len(record) + 1
    if group:
        yield group


def ingest_body(records: list[bytes]) -> bytes:
    return b'{"data":[' + b",".join(records) + b"]}"


class IngestPoster:
    """POSTs aggregates to /ingest; retries with backoff for a bounded time, then gives up."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        retry_seconds: float,
        max_body_bytes: int,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self.url = url
        self.retry_seconds = retry_seconds
        self.max_body_bytes = max_body_bytes
        self.api_down = False
        self.client = httpx.Client(headers=headers, timeout=timeout, transport=transport)

    def post(self, records: list[bytes]) -> bool:
        """True when every chunk was accepted; False when one was given up."""
        delivered = True
        for chunk in chunk_records(records, self.max_body_bytes):
            delivered = self._post_chunk(ingest_body(chunk)) and delivered
        return delivered

    def _post_chunk(self, body: bytes) -> bool:
        # After a give-up, one attempt per chunk until the API answers again: retrying every
        # batch for the full time would hold the whole stream (and the Kafka copy) back.
        retrying = Retrying(
            retry=retry_if_exception(_retryable),
            wait=wait_exponential_jitter(multiplier=0.2, max=2.0),
            stop=stop_after_delay(0 if self.api_down else self.retry_seconds),
            reraise=False,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self.client.post(self.url, content=body).raise_for_status()
        except RetryError as exc:
            if not self.api_down:
                log.warning(
                    "gave up POSTing to %s after %.0f s: %s (the windows topic keeps the batch); "
                    "trying once per batch until it answers",
                    self.url,
                    self.retry_seconds,
                    exc.last_attempt.exception(),
                )
            self.api_down = True
            return False
        except httpx.HTTPStatusError as exc:
            log.error(
                "%s rejected a batch: %s %s",
                self.url,
                exc.response.status_code,
                exc.response.text[:300],
            )
            return False
        if self.api_down:
            log.info("%s answers again", self.url)
            self.api_down = False
        return True

    def close(self) -> None:
        self.client.close()


def read_partials(ticks: DataFrame, aggregate: PartialWindows) -> list[Partial]:
    """A batch's partial window aggregates, computed by Spark, read through Arrow (columns
    to Python lists: no Row object per window)."""
    table = aggregate(ticks).toArrow()
    column = {name: table.column(name).to_pylist() for name in table.column_names}
    starts = column["start_ms"]
    ends = [start + aggregate.length_ms for start in starts]
    values = [ends, *(column[name] for name in STATE_FIELDS[1:])]
    return [
        (source, coin, start_ms, WindowState.of(state))
        for source, coin, start_ms, *state in zip(
            column["source"], column["coin"], starts, *values, strict=True
        )
    ]


class WindowSink:
    """`foreachBatch` target of the live query: aggregate the batch's ticks per window, fold
    them into the open windows, publish the changed windows, then those the watermark closed
    (as final), to Kafka and the API — once per batch id."""

    def __init__(
        self,
        name: str,
        *,
        publisher: BatchPublisher,
        poster: IngestPoster | None,
        state_file: CheckpointPath,
        window_seconds: float,
        watermark_ms: int,
        stats: SinkStats,
    ) -> None:
        self.name = name
        self.partials = PartialWindows.of(window_seconds)  # needs Spark's JVM (py4j)
        self.publisher = publisher
        self.poster = poster
        self.state_file = state_file
        self.tracker = FinalTracker.load(state_file, watermark_ms)
        self.stats = stats

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        if self.tracker.seen(batch_id):
            # Still run the batch: its progress carries the count of rejected records.
            batch.write.format("noop").mode("overwrite").save()
            with self.stats.lock:
                self.stats.batches_skipped += 1
            log.info("[%s] batch %d was already published; skipped", self.name, batch_id)
            return
        change = self.tracker.advance(batch_id, read_partials(batch, self.partials))
        records = change.live + change.finals
        if records and batch_id <= self.publisher.committed(self._saved_at):
            # Committed just before a crash that came before the state was saved.
            log.info(
                "[%s] batch %d is already on %s; not written again",
                self.name,
                batch_id,
                self.publisher.topic,
            )
            with self.stats.lock:
                self.stats.batches_skipped += 1
        elif records:
            self.publish(batch_id, records)
        self.tracker.save(self.state_file)
        with self.stats.lock:
            self.stats.emitted_by_batch[(self.name, batch_id)] = len(records)
            self.stats.late_by_batch[(self.name, batch_id)] = change.late_ticks
            self.stats.finals_published += len(change.finals)
            self.stats.late_ticks += change.late_ticks

    def recover(self) -> None:
        """Learn, before the first batch, the newest batch this sink committed to Kafka (see
        publish.py): it reads the topic's tail back, half a second (measured) that would
        otherwise hold up the first batch, and with it the first ticks' way to the API."""
        self.publisher.committed(self._saved_at)

    def _saved_at(self) -> float | None:
        """When the tracker's state was last saved (None: never): every batch this sink
        committed without saving came later."""
        try:
            return modified_at(self.state_file)
        except FileNotFoundError:
            return None

    def publish(self, batch_id: int, records: list[tuple[str, bytes]]) -> None:
        # A failure raises before the state is saved: Spark runs the batch again, whole.
        self.publisher.publish(batch_id, records)
        posted = self.poster.post([v for _, v in records]) if self.poster else True
        with self.stats.lock:
            self.stats.windows_published += len(records)
            if not posted:
                self.stats.posts_given_up += 1


@dataclass
class _Tally:
    """One dead-letter batch: records handed to the producer, refused by it, and delivery
    reports. Reports that arrive after the batch gave up waiting are ignored."""

    produced: int = 0
    refused: int = 0
    delivered: int = 0
    closed: bool = False
    errors: list[str] = field(default_factory=list)

    def on_delivery(self, err: object, _msg: object) -> None:
        if self.closed:
            return
        if err is None:
            self.delivered += 1
        elif len(self.errors) < 3:
            self.errors.append(str(err))

    def refuse(self, why: str) -> None:
        self.refused += 1
        if len(self.errors) < 3:
            self.errors.append(why)

    @property
    def failed(self) -> int:
        """Refused, reported failed, or not confirmed in time."""
        return self.refused + self.produced - self.delivered


def dead_letter_producer(
    bootstrap: str, delivery_timeout: float, security: KafkaSecurity | None = None
) -> Producer:
    """The dead-letter sink's own producer: its failures (or a full queue) never hold back
    the windows' producer, whose flush would count them as undelivered windows."""
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "compression.type": "lz4",
            "linger.ms": 5,
            # Not idempotent: a timed-out message there is a fatal error that would leave the
            # producer unusable for good; a repeated dead letter is harmless.
            "enable.idempotence": False,
            "message.timeout.ms": int(delivery_timeout * 1000),
            **librdkafka_config(security),
        }
    )


class DeadLetterSink:
    """Writes the dead letters of a re-read batch (see rejects.py). Never raises: whatever
    fails (the broker, a record, Spark itself) is counted in `stats.dead_letters_failed`
    and logged."""

    def __init__(
        self,
        name: str,
        *,
        producer: Producer,
        topic: str,
        state_file: CheckpointPath,
        stats: SinkStats,
        delivery_timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.producer = producer
        self.topic = topic
        self.state_file = state_file
        self.stats = stats
        self.delivery_timeout = delivery_timeout
        self.last_batch_id = self._load_batch_id(state_file)

    @staticmethod
    def _load_batch_id(path: CheckpointPath) -> int:
        try:
            return int(orjson.loads(path.read_bytes())["batch_id"])
        except FileNotFoundError:
            return -1
        except (ValueError, TypeError, KeyError) as exc:
            log.error("%s is unreadable (%s); dead letters may repeat once", path, exc)
            return -1

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        if batch_id <= self.last_batch_id:
            # Published before a crash, not yet committed by Spark: stateless, so just skip.
            log.info("[%s] batch %d was already published; skipped", self.name, batch_id)
            with self.stats.lock:
                self.stats.batches_skipped += 1
            return
        from pyspark import StorageLevel

        tally = _Tally()
        read_all = False
        letters = batch.select("key", "value").persist(StorageLevel.MEMORY_AND_DISK)
        try:
            # One parallel job reads, parses and filters the batch (usually no dead letters);
            # then the dead letters come to the driver partition by partition from the cache,
            # so a batch of many bad records never sits whole in memory.
            if letters.count():
                rows = letters.toLocalIterator()
                self.produce_all(((r["key"], r["value"]) for r in rows), tally)
            read_all = True
        except Exception as exc:  # a dead letter is never worth stopping the job for
            log.error("[%s] batch %d: dead letters not written: %s", self.name, batch_id, exc)
            tally.refuse(str(exc))  # at least one; the rest of the batch is unknown
        finally:
            self.producer.flush(self.delivery_timeout + 5)
            tally.closed = True
            try:
                letters.unpersist()
            except Exception as exc:
                log.warning("[%s] batch %d: could not unpersist: %s", self.name, batch_id, exc)
        if tally.failed:
            log.error(
                "[%s] batch %d: %d of %d dead letters not delivered to %s: %s",
                self.name,
                batch_id,
                tally.failed,
                tally.produced + tally.refused,
                self.topic,
                tally.errors[:1],
            )
        with self.stats.lock:
            self.stats.dead_letters_published += tally.delivered
            self.stats.dead_letters_failed += tally.failed
            self.stats.emitted_by_batch[(self.name, batch_id)] = tally.produced + tally.refused
        if read_all:  # else e.g. interrupted by a stop: if the batch runs again, so do we
            self._save(batch_id, durable=True)

    def handled(self, batch_id: int) -> None:
        """Record a batch that had no dead letters (not synced: if the write is lost, the
        batches since the last one written are only read again after a crash)."""
        if batch_id > self.last_batch_id:
            self._save(batch_id, durable=False)

    def _save(self, batch_id: int, *, durable: bool) -> None:
        """Remember `batch_id` as the last batch handled, here and in the state file."""
        self.last_batch_id = batch_id
        try:
            write_state(self.state_file, orjson.dumps({"batch_id": batch_id}), durable=durable)
        except Exception as exc:
            log.error("[%s] could not save %s: %s", self.name, self.state_file, exc)

    def produce_all(self, records: Iterable[tuple[str | None, str | bytes]], tally: _Tally) -> None:
        """Hand each record to the producer; what it refuses is counted in `tally`.

        A full local queue is waited on (deliveries or time-outs free it) for
        `delivery_timeout` in all, so a batch with the broker away ends in bounded time.
        """
        deadline = time.monotonic() + self.delivery_timeout
        for key, value in records:
            payload = value.encode() if isinstance(value, str) else value
            while True:
                try:
                    self.producer.produce(
                        self.topic, key=key, value=payload, on_delivery=tally.on_delivery
                    )
                    tally.produced += 1
                    break
                except BufferError:  # the local queue is full: wait for deliveries
                    if time.monotonic() > deadline:
                        tally.refuse("producer queue full")
                        break
                    self.producer.poll(0.1)
                except KafkaException as exc:  # e.g. larger than message.max.bytes
                    tally.refuse(str(exc))
                    break
            self.producer.poll(0)
