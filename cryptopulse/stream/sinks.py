"""Where each micro-batch of window aggregates goes: the windows topic and the API's /ingest.

A batch is published once: the last published batch id is kept next to the query's
checkpoint, so a batch that Spark re-runs after a crash (same id) is skipped rather
than sent twice. Records are serialized by Spark (`to_json`), so no per-field Python
work happens per window.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from confluent_kafka import Producer
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger("cryptopulse.stream.sink")

ISO_MILLIS = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"


@dataclass
class SinkStats:
    """Running totals, read by the progress logger."""

    windows_published: int = 0
    batches_skipped: int = 0
    posts_given_up: int = 0
    kafka_failures: int = 0
    emitted_by_batch: dict[tuple[str, int], int] = field(default_factory=dict)
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
        self.client = httpx.Client(headers=headers, timeout=timeout, transport=transport)

    def post(self, records: list[bytes]) -> bool:
        """True when every chunk was accepted; False when one was given up."""
        delivered = True
        for chunk in chunk_records(records, self.max_body_bytes):
            delivered = self._post_chunk(ingest_body(chunk)) and delivered
        return delivered

    def _post_chunk(self, body: bytes) -> bool:
        retrying = Retrying(
            retry=retry_if_exception(_retryable),
            wait=wait_exponential_jitter(multiplier=0.2, max=2.0),
            stop=stop_after_delay(self.retry_seconds),
            reraise=False,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self.client.post(self.url, content=body).raise_for_status()
        except RetryError as exc:
            cause = exc.last_attempt.exception()
            log.warning(
                "gave up POSTing to %s after %.0f s: %s (the windows topic keeps the batch)",
                self.url,
                self.retry_seconds,
                cause,
            )
            return False
        except httpx.HTTPStatusError as exc:
            log.error(
                "%s rejected a batch: %s %s",
                self.url,
                exc.response.status_code,
                exc.response.text[:300],
            )
            return False
        return True

    def close(self) -> None:
        self.client.close()


class BatchMarker:
    """The last batch id a query's sink published, stored beside its checkpoint."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def last(self) -> int:
        try:
            return int(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return -1

    def commit(self, batch_id: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(str(batch_id))
        tmp.replace(self.path)


class WindowSink:
    """`foreachBatch` target: publish a batch to Kafka and POST it to the API, once."""

    def __init__(
        self,
        name: str,
        *,
        producer: Producer,
        topic: str,
        poster: IngestPoster | None,
        marker: BatchMarker,
        stats: SinkStats,
    ) -> None:
        self.name = name
        self.producer = producer
        self.topic = topic
        self.poster = poster
        self.marker = marker
        self.stats = stats

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        if batch_id <= self.marker.last():
            with self.stats.lock:
                self.stats.batches_skipped += 1
            log.info("[%s] batch %d was already published; skipped", self.name, batch_id)
            return
        records = self.serialize(batch)
        if records:
            self.publish(records)
        self.marker.commit(batch_id)
        with self.stats.lock:
            self.stats.emitted_by_batch[(self.name, batch_id)] = len(records)

    @staticmethod
    def serialize(batch: DataFrame) -> list[tuple[str, bytes]]:
        from pyspark.sql import functions as F

        rows = batch.select(
            "coin",
            F.to_json(
                F.struct(*batch.columns),
                {"timestampFormat": ISO_MILLIS, "ignoreNullFields": "false"},
            ).alias("json"),
        ).collect()
        return [(row["coin"], row["json"].encode()) for row in rows]

    def publish(self, records: list[tuple[str, bytes]]) -> None:
        failures: list[str] = []

        def on_delivery(err: object, _msg: object) -> None:
            if err is not None:
                failures.append(str(err))

        for coin, value in records:
            self.producer.produce(self.topic, key=coin, value=value, on_delivery=on_delivery)
            self.producer.poll(0)
        remaining = self.producer.flush(30)
        if failures or remaining:
            with self.stats.lock:
                self.stats.kafka_failures += len(failures) + remaining
            log.error(
                "[%s] %d of %d windows not delivered to %s: %s",
                self.name,
                len(failures) + remaining,
                len(records),
                self.topic,
                failures[:1],
            )
        posted = self.poster.post([v for _, v in records]) if self.poster else True
        with self.stats.lock:
            self.stats.windows_published += len(records)
            if not posted:
                self.stats.posts_given_up += 1
