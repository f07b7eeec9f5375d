"""Wiring of the streaming job: session, Kafka source, one query, progress logging.

`windows-live` (update mode) reads and parses every tick once: every changed window's
current aggregate each trigger (final=false); its sink also publishes each window once
more, final=true, when the watermark passes it (see finals.py). The same parse counts each
batch's rejected records; a batch that had any is read again from Kafka over its offset
range and its dead letters (reason and a bounded excerpt) go to the DLQ topic (see
rejects.py); that never fails the job (see sinks.DeadLetterSink).

The query's checkpoint is under the data folder, so a restart resumes where the last
committed batch ended. The job runs until it is asked to stop; a query that ends for any
other reason, with or without an error, ends the job with an error (so a supervisor
restarts it). Run it with `cryptopulse stream`, or unchanged under spark-submit (see README).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TypeVar

import orjson

from cryptopulse.config import Settings
from cryptopulse.errors import CryptoPulseError
from cryptopulse.files import write_atomic
from cryptopulse.kafka_client import spark_kafka_options
from cryptopulse.stream.parse import count_rejected, parse_ticks, valid_ticks
from cryptopulse.stream.progress import Progress, ProgressListener
from cryptopulse.stream.publish import BatchPublisher, sink_id
from cryptopulse.stream.rejects import (
    RejectedRange,
    RejectsWorker,
    committed_gap,
    rejected_range,
)
from cryptopulse.stream.sinks import (
    DeadLetterSink,
    IngestPoster,
    SinkStats,
    WindowSink,
    dead_letter_producer,
)
from cryptopulse.stream.storage import CheckpointPath, checkpoint_path

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, DataFrameReader, SparkSession
    from pyspark.sql.streaming.query import StreamingQuery
    from pyspark.sql.streaming.readwriter import DataStreamReader

log = logging.getLogger("cryptopulse.stream")

LIVE, DLQ = "windows-live", "dead-letters"
# Checkpoints of this version: Spark refuses to restore state of another schema, so each
# version that changes the windows' state starts its own. v1 (checkpoints/<query>) grouped
# windows without the source; v2 held no trades (VWAP, traded volume, trade count) nor the
# quote; v3 kept the windows in Spark's state store (now the sink's, see finals.py). Earlier
# versions' folders are left alone and named in the log.
CHECKPOINT_VERSION = "v4"
EARLIER_VERSIONS = ("v2", "v3")
# The dead-letter sink's state (last batch written), next to the windows query's checkpoint.
DEAD_LETTER_STATE = "dead-letter-state.json"


class QueryStopped(CryptoPulseError):
    """A query ended without being asked to: the job must exit non-zero and be restarted."""


Reader = TypeVar("Reader", "DataFrameReader", "DataStreamReader")


def kafka_options(reader: Reader, settings: Settings) -> Reader:
    """The ticks topic and the connection options, for the stream and for batch re-reads."""
    return (
        reader.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka.bootstrap)
        .option("subscribe", settings.kafka.topic_ticks)
        .option("failOnDataLoss", "false")
        # A task reads a known offset range; the broker's default 500 ms wait for more data
        # at the end of a fetch made small batches take half a second each (measured).
        .option("kafka.fetch.max.wait.ms", "10")
        .option("kafka.max.poll.records", "10000")
        # security.protocol, SASL and TLS (none for PLAINTEXT); Spark redacts the JAAS
        # option (it holds `password`) wherever it shows options
        .options(**spark_kafka_options(settings.kafka.security))
    )


def read_ticks(spark: SparkSession, settings: Settings, trigger_seconds: float) -> DataFrame:
    """The ticks topic as a stream; a rate cap (per second) scales with the query's trigger."""
    reader = kafka_options(spark.readStream, settings).option(
        "startingOffsets", settings.spark.starting_offsets
    )
    if settings.spark.max_offsets_per_trigger:
        per_second = settings.spark.max_offsets_per_trigger / settings.spark.trigger_seconds
        reader = reader.option("maxOffsetsPerTrigger", int(per_second * trigger_seconds))
    return reader.load()


def read_range(spark: SparkSession, settings: Settings, batch: RejectedRange) -> DataFrame:
    """One batch's records again, as a bounded batch read of its offset range."""
    return (
        kafka_options(spark.read, settings)
        .option("startingOffsets", batch.start)
        .option("endingOffsets", batch.end)
        .load()
    )


@dataclass
class StreamJob:
    """The running queries and what they share; `stop()` ends them and flushes the producer."""

    settings: Settings
    spark: SparkSession
    stats: SinkStats = field(default_factory=SinkStats)
    queries: list[StreamingQuery] = field(default_factory=list)
    ready_file: Path | None = None

    def __post_init__(self) -> None:
        kafka = self.settings.kafka
        live_checkpoint = self.checkpoint_root() / CHECKPOINT_VERSION / LIVE
        self.publisher = BatchPublisher(
            kafka.bootstrap,
            kafka.topic_windows,
            sink_id(
                str(live_checkpoint.resolve())
                if isinstance(live_checkpoint, Path)
                else str(live_checkpoint)
            ),
            security=kafka.security,
        )
        self.dead_letter_producer = dead_letter_producer(
            kafka.bootstrap, delivery_timeout=30.0, security=kafka.security
        )
        api = self.settings.api
        self.poster = (
            IngestPoster(
                api.ingest,
                api.token.get_secret_value() if api.token else None,
                retry_seconds=self.settings.spark.post_retry_seconds,
                max_body_bytes=api.max_body_bytes,
            )
            if self.settings.spark.post_to_api
            else None
        )

    def start(self) -> None:
        settings, conf = self.settings, self.settings.spark
        trigger = f"{int(conf.trigger_seconds * 1000)} milliseconds"
        self.publisher.start()  # fences a killed predecessor; fails fast when Kafka is away
        parsed = count_rejected(
            parse_ticks(
                read_ticks(self.spark, settings, conf.trigger_seconds), conf.max_future_seconds
            )
        )
        checkpoints = self.checkpoints()
        self._start_rejects(checkpoints)
        self._listen()
        sink = WindowSink(
            LIVE,
            publisher=self.publisher,
            poster=self.poster,
            state_file=checkpoints / LIVE / "sink-state.json",
            window_seconds=conf.window_seconds,
            watermark_ms=int(conf.watermark_seconds * 1000),
            stats=self.stats,
        )
        sink.recover()
        self.queries.append(
            valid_ticks(parsed)
            .writeStream.queryName(LIVE)
            .trigger(processingTime=trigger)
            .option("checkpointLocation", str(checkpoints / LIVE))
            .foreachBatch(sink)
            .start()
        )
        if self.ready_file is not None:
            ready = {"pid": os.getpid(), "started_at": time.time()}
            write_atomic(self.ready_file, orjson.dumps(ready))
        log.info(
            "streaming %s -> %s (+ %s) with %g s windows, %g s watermark, %g s trigger",
            settings.kafka.topic_ticks,
            settings.kafka.topic_windows,
            settings.api.ingest if self.poster else "no API",
            conf.window_seconds,
            conf.watermark_seconds,
            conf.trigger_seconds,
        )

    def _start_rejects(self, checkpoints: CheckpointPath) -> None:
        """The worker that writes the dead letters of batches that had rejected records; it
        first catches up on batches committed before a crash whose dead letters were not
        written yet."""
        settings = self.settings
        dead_letter_sink = DeadLetterSink(
            DLQ,
            producer=self.dead_letter_producer,
            topic=settings.kafka.topic_dlq,
            state_file=checkpoints / LIVE / DEAD_LETTER_STATE,
            stats=self.stats,
        )
        self.rejects = RejectsWorker(
            lambda batch: read_range(self.spark, settings, batch),
            dead_letter_sink,
            settings.spark.max_future_seconds,
        )
        gap = committed_gap(checkpoints / LIVE, dead_letter_sink.last_batch_id)
        if gap is not None:  # committed before a crash; their rejects were not written yet
            log.info("batches up to %d are read again for their dead letters", gap.batch_id)
            self.rejects.submit(gap)
        self.rejects.start()

    def _listen(self) -> None:
        """Log each query's start and end, and hand its progress to `on_progress`."""
        self.listener = ProgressListener(self.on_progress)
        self.listener.add_to(self.spark)

    def checkpoint_root(self) -> CheckpointPath:
        """`spark.checkpoint_location` (a folder or a Hadoop URL), else `<data>/checkpoints`."""
        location = self.settings.spark.checkpoint_location or str(self.settings.checkpoint_dir)
        return checkpoint_path(location, self.spark)

    def checkpoints(self) -> CheckpointPath:
        """This version's checkpoint folder; says so when an earlier version's is left over."""
        root = self.checkpoint_root()
        earlier = [root / name for name in (LIVE, DLQ, *EARLIER_VERSIONS)]
        for folder in earlier:
            if folder.is_dir():
                log.warning(
                    "%s holds the checkpoint of an earlier version, whose window state this "
                    "one cannot restore; not used (remove it to reclaim the space). This "
                    "version starts its own in %s, from the %s offsets of %s",
                    folder,
                    root / CHECKPOINT_VERSION,
                    self.settings.spark.starting_offsets,
                    self.settings.kafka.topic_ticks,
                )
        return root / CHECKPOINT_VERSION

    @property
    def late_dropped(self) -> int:
        """Ticks dropped as late (their window was final already), so far."""
        with self.stats.lock:
            return self.stats.late_ticks

    @property
    def dead_lettered(self) -> int:
        """Records rejected so far (written to the dead-letter topic or not)."""
        with self.stats.lock:
            return self.stats.dead_letters_published + self.stats.dead_letters_failed

    def on_progress(self, progress: Progress) -> None:
        name, batch = progress["name"], int(progress["batchId"])
        with self.stats.lock:
            emitted = self.stats.emitted_by_batch.pop((name, batch), 0)
        if name != LIVE:
            return
        rejects = rejected_range(progress, self.settings.spark.starting_offsets)
        self.rejects.submit(batch if rejects is None else rejects)
        with self.stats.lock:
            late = self.stats.late_by_batch.pop((name, batch), 0)
        if progress["numInputRows"] or emitted:
            log.info(
                "batch %d [%s]: %d input rows, %d windows emitted, %d rejected, %d ms%s",
                batch,
                name,
                progress["numInputRows"],
                emitted,
                rejects.rejected if rejects else 0,
                progress["batchDuration"],
                f", {late} late ticks dropped" if late else "",
            )

    def await_termination(self, stop: threading.Event) -> None:
        """Block until `stop` is set; a query that ends first raises QueryStopped, whether
        it failed or ended without an error (either way the job is no longer whole)."""
        while not stop.wait(0.5):
            for query in self.queries:
                try:
                    if query.isActive:
                        continue
                except Exception as exc:  # py4j's: Spark's JVM is gone (killed, out of memory)
                    if stop.is_set():
                        return
                    raise QueryStopped(f"Spark's JVM is gone ({exc}); its queries with it") from exc
                if stop.is_set():  # e.g. a signal that also reached Spark's JVM
                    return
                error = query.exception()
                if error is not None:
                    raise QueryStopped(f"query {query.name} failed: {error}")
                raise QueryStopped(f"query {query.name} stopped without an error")

    def stop(self) -> None:
        """Stop the queries, flush the producers, delete the ready file. Never raises: it
        runs on the way out, after a failure too (whose error must stay the one reported)."""
        if self.ready_file is not None:
            self.ready_file.unlink(missing_ok=True)
        # Let running micro-batches finish (stopping interrupts their tasks mid-write), for
        # 10 s in all: the supervisor gives the whole pipeline 15 s to stop.
        deadline = time.monotonic() + 10
        for query in self.queries:
            try:
                while (
                    query.isActive
                    and query.status["isTriggerActive"]
                    and time.monotonic() < deadline
                ):
                    time.sleep(0.05)
                if query.isActive:
                    query.stop()
            except Exception as exc:  # the JVM may be gone already
                log.warning("could not stop query %s: %s", LIVE, exc)
        try:
            if getattr(self, "listener", None) is not None:
                self.listener.remove_from(self.spark)
        except Exception as exc:
            log.warning("could not remove the progress listener: %s", exc)
        self.publisher.close()
        if getattr(self, "rejects", None) is not None:
            self.rejects.stop(max(1.0, deadline - time.monotonic()))
        self.dead_letter_producer.flush(5)  # best effort; each batch has flushed its own
        if self.poster:
            self.poster.close()
        stats = self.stats
        log.info(
            "stopped: %d windows published (%d final), %d dead letters (%d not delivered), "
            "%d late ticks dropped, %d POSTs given up, %d re-run batches skipped",
            stats.windows_published,
            stats.finals_published,
            self.dead_lettered,
            stats.dead_letters_failed,
            stats.late_ticks,
            stats.posts_given_up,
            stats.batches_skipped,
        )


def run(settings: Settings, ready_file: Path | None = None) -> None:
    """`cryptopulse stream`: run until Ctrl-C / SIGTERM, then stop the queries cleanly.

    Returns only after a requested stop; a query that ends by itself raises QueryStopped.
    `ready_file` is written (pid, start time) once the query runs, and deleted on stop.
    """
    from cryptopulse.platform.spark import spark_session

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if ready_file is not None:
        ready_file.unlink(missing_ok=True)  # an earlier process's
    spark = spark_session(settings, "cryptopulse-stream")
    job = StreamJob(settings, spark, ready_file=ready_file)
    try:
        job.start()
        job.await_termination(stop)
    finally:
        job.stop()
        try:
            spark.stop()
        except Exception as exc:
            log.warning("could not stop Spark: %s", exc)
