"""Source -> Kafka: publish Ticks on the ticks topic, keyed by coin id.

`TickProducer` wraps one confluent-kafka producer (idempotent, acks=all, compressed) with an
explicit lifecycle: `start()` checks the broker answers, `publish()` validates each Tick's
JSON against the schema and sends it, `stop()` flushes and reports what was not delivered.
Delivery results arrive in callbacks and are counted (and exported as Prometheus metrics).

`drive()` runs a source into any sink (the producer, or a capture file for `record`) until
the source ends, a tick or time budget is reached, or `stop()` is called (Ctrl-C), logging
one line per cycle: published N, skipped M with reasons, unchanged K.

`BackfillPublisher` takes a source's past (`backfill` windows, see `cryptopulse.backfill`) to the
windows topic with the same client, keyed and encoded as the Spark job writes windows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from pydantic import ValidationError

from cryptopulse.backfill import encode_window
from cryptopulse.config import KafkaSecurity, Settings
from cryptopulse.errors import CryptoPulseError
from cryptopulse.kafka_client import REFUSALS, describe, librdkafka_config
from cryptopulse.kafka_link import QUIET_CLIENT_LOG, KafkaLink
from cryptopulse.producer_metrics import Counts, ProducerMetrics, by_source, reasons
from cryptopulse.schema import (
    SourceStatus,
    Tick,
    WindowAggregate,
    status_to_json,
    tick_from_json,
    tick_to_json,
)
from cryptopulse.sources.base import BackfillSink, Batch, Source
from cryptopulse.status import StatusTracker

log = logging.getLogger("cryptopulse.producer")
_client_log = logging.getLogger("cryptopulse.producer.librdkafka")  # the Kafka client's own log


def kafka_config(
    bootstrap: str,
    *,
    compression: str = "lz4",
    linger_ms: int = 20,
    buffer_seconds: float = 600.0,
    buffer_messages: int = 500_000,
    max_batch_bytes: int = 256 * 1024,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """librdkafka settings: idempotent (no duplicates or reordering on retry), acks=all.

    While Kafka is away ticks wait in the client's buffer, at most `buffer_messages` of them
    and each for `buffer_seconds`, and are retried in order when it is back (idempotence
    keeps a retried batch from being written twice). A record batch stays under the ticks
    topic's max.message.bytes.
    """
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "client.id": "cryptopulse-producer",
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": compression,
        "linger.ms": linger_ms,
        "batch.num.messages": 10_000,
        "batch.size": max(16 * 1024, max_batch_bytes - 4096),
        "queue.buffering.max.messages": buffer_messages,
        "message.timeout.ms": int(buffer_seconds * 1000),
        "log_level": QUIET_CLIENT_LOG,
        "reconnect.backoff.max.ms": 2000,
    }
    config.update(extra or {})
    return config


class TickProducer:
    """Publishes Ticks to one topic; `start()` before use, `stop()` flushes."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        compression: str = "lz4",
        linger_ms: int = 20,
        flush_timeout: float = 5.0,
        buffer_seconds: float = 600.0,
        buffer_messages: int = 500_000,
        max_batch_bytes: int = 256 * 1024,
        status_topic: str | None = None,
        security: KafkaSecurity | None = None,
        extra_config: dict[str, Any] | None = None,
        metrics: ProducerMetrics | None = None,
        producer_factory: Callable[[dict[str, Any]], Producer] = Producer,
    ) -> None:
        self.bootstrap = bootstrap
        self._factory = producer_factory
        self.topic = topic
        self.status_topic = status_topic
        self.flush_timeout = flush_timeout
        self.security = security
        self.config = kafka_config(
            bootstrap,
            compression=compression,
            linger_ms=linger_ms,
            buffer_seconds=buffer_seconds,
            buffer_messages=buffer_messages,
            max_batch_bytes=max_batch_bytes,
            extra=extra_config,
        )
        self.metrics = metrics or ProducerMetrics()
        self._producer: Producer | None = None
        self._errors_logged: set[str] = set()
        self._invalid_logged = False
        self._refused = ""  # why the broker refused this client (credentials, TLS), if it said
        self._interrupted = threading.Event()
        self.link = KafkaLink(
            bootstrap,
            log,
            while_away=(
                "buffering ticks until it is back (at most "
                f"{self.config['queue.buffering.max.messages']:,} ticks, each for "
                f"{self.config['message.timeout.ms'] / 1000:.0f} s)"
            ),
        )

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> TickProducer:
        p = settings.producer
        kwargs: dict[str, Any] = {
            "compression": p.compression,
            "linger_ms": p.linger_ms,
            "flush_timeout": p.flush_timeout,
            "buffer_seconds": p.buffer_seconds,
            "buffer_messages": p.buffer_messages,
            "max_batch_bytes": settings.kafka.ticks_max_message_bytes,
            "status_topic": settings.kafka.topic_status,
            "security": settings.kafka.security,
        }
        kwargs.update(overrides)
        topic = kwargs.pop("topic", settings.kafka.topic_ticks)
        bootstrap = kwargs.pop("bootstrap", settings.kafka.bootstrap)
        return cls(bootstrap, topic, **kwargs)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, check_timeout: float = 10.0) -> None:
        """Create the producer and check the broker answers (and whether the topic exists)."""
        if self._producer is not None:
            return
        # The credentials join the config only here: `self.config` is safe to show.
        producer = self._factory(
            {
                **self.config,
                **librdkafka_config(self.security),
                "error_cb": self._on_error,
                "logger": _client_log,
            }
        )
        deadline = time.monotonic() + check_timeout
        while True:
            # In slices: a broker that refuses the credentials answers no metadata request,
            # and says why (to error_cb) long before the whole timeout is up.
            remaining = deadline - time.monotonic()
            try:
                metadata = producer.list_topics(timeout=max(0.01, min(1.0, remaining)))
                break
            except KafkaException as exc:
                producer.poll(0)  # serves the error callbacks queued meanwhile (`_refused`)
                if self._refused:
                    raise CryptoPulseError(
                        f"Kafka at {self.bootstrap} refused this client ({self._refused}); check "
                        f"kafka.security (now {describe(self.security)}; "
                        "CRYPTOPULSE_KAFKA__SECURITY__*)"
                    ) from exc
                if exc.args[0].code() == KafkaError._TIMED_OUT and remaining > 1.0:
                    continue
                raise CryptoPulseError(
                    f"Kafka at {self.bootstrap} is not reachable ({exc.args[0].str()}): start it "
                    "with `cryptopulse kafka start` or set CRYPTOPULSE_KAFKA__BOOTSTRAP_SERVERS."
                ) from exc
        if self.topic not in metadata.topics:
            log.warning(
                "topic %s does not exist on %s; it is created only if the broker auto-creates topics",
                self.topic,
                self.bootstrap,
            )
        self._producer = producer
        log.info(
            "publishing to %s on %s (idempotent, acks=all, %s)",
            self.topic,
            self.bootstrap,
            self.config["compression.type"],
        )

    def stop(self) -> int:
        """Flush what is queued; returns how many ticks were not delivered in time."""
        producer = self._producer
        if producer is None:
            return 0
        self._producer = None
        remaining = int(producer.flush(self.flush_timeout))
        if remaining:
            self.metrics.count_delivery("not flushed", remaining)
            log.error(
                "%d tick(s) not delivered within %.0f s of stopping (is Kafka at %s up?)",
                remaining,
                self.flush_timeout,
                self.bootstrap,
            )
        return remaining

    def __enter__(self) -> TickProducer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- publishing ----------------------------------------------------------------------

    def publish(self, ticks: Iterable[Tick]) -> int:
        """Validate and send ticks; returns how many were handed to Kafka."""
        producer = self._producer
        if producer is None:
            raise RuntimeError("TickProducer.start() first")
        sent = 0
        topic = self.topic
        on_delivery = self._on_delivery
        for tick in ticks:
            value = tick_to_json(tick)
            try:
                checked = tick_from_json(value)
            except ValidationError as exc:
                self._invalid(tick, exc)
                continue
            key = checked.coin.encode()
            try:
                producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
            except BufferError:  # the slow path only: a full buffer (Kafka away for long)
                if not self._produce_when_room(producer, topic, key, value, on_delivery):
                    break
            sent += 1
        producer.poll(0)
        self.metrics.count_sent(sent, time.time())
        return sent

    def _produce_when_room(
        self,
        producer: Producer,
        topic: str,
        key: bytes,
        value: bytes,
        on_delivery: Callable[[KafkaError | None, Message], None],
    ) -> bool:
        """Wait for room in the client's full buffer, then hand the record over: the source
        is held back, nothing is dropped. False once interrupted."""
        while not self._interrupted.is_set():
            producer.poll(0.1)
            try:
                producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                return True
            except BufferError:
                continue
        return False

    def has_topic(self, topic: str, timeout: float = 5.0) -> bool:
        """Whether `topic` exists on the broker (records to a missing one would wait in the
        buffer until they time out)."""
        producer = self._producer
        if producer is None:
            raise RuntimeError("TickProducer.start() first")
        try:
            return topic in producer.list_topics(timeout=timeout).topics
        except KafkaException:
            return False

    def publish_records(self, topic: str, records: Sequence[tuple[bytes, bytes]]) -> int:
        """Send (key, value) records to another topic (backfill windows); their deliveries are
        counted apart from the ticks'. How many were handed to Kafka."""
        producer = self._producer
        if producer is None:
            raise RuntimeError("TickProducer.start() first")
        sent = 0
        on_delivery = self._on_record_delivery
        for key, value in records:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
            except BufferError:
                if not self._produce_when_room(producer, topic, key, value, on_delivery):
                    break
            sent += 1
        producer.poll(0)
        return sent

    def _on_record_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        self.metrics.count_backfill_delivery(None if err is None else err.name())
        if err is not None and "backfill" not in self._errors_logged:
            self._errors_logged.add("backfill")
            log.error("backfill window not delivered (%s); further failures are counted", err.str())

    def interrupt(self) -> None:
        """Stop waiting for buffer room (a stop was requested); `stop()` still flushes."""
        self._interrupted.set()

    def publish_status(self, status: SourceStatus) -> None:
        """Put the source's status on the (compacted) status topic, key = source."""
        producer = self._producer
        if producer is None or self.status_topic is None:
            return
        try:
            producer.produce(
                self.status_topic,
                key=status.source.encode(),
                value=status_to_json(status),
                on_delivery=self._on_status_delivery,
            )
        except BufferError:
            log.debug("status not queued: the client's buffer is full")
        producer.poll(0)

    def poll(self, timeout: float = 0.0) -> None:
        if self._producer is not None:
            self._producer.poll(timeout)

    def _invalid(self, tick: Tick, exc: ValidationError) -> None:
        self.metrics.count_invalid()
        if not self._invalid_logged:
            self._invalid_logged = True
            log.warning("dropping a tick that fails the schema (coin %r): %s", tick.coin, exc)

    def _on_status_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            self._kafka_back()
        else:
            log.debug("source status not delivered: %s", err.str())

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.metrics.count_delivery(None)
            self._kafka_back()
            return
        name = err.name()
        self.metrics.count_delivery(name)
        if name not in self._errors_logged:
            self._errors_logged.add(name)
            log.error(
                "delivery failed (%s): %s; further failures of this kind are counted",
                name,
                err.str(),
            )

    def _on_error(self, err: KafkaError) -> None:
        if err.code() in REFUSALS:
            self._refused = err.str()
        if self.link.on_error(err):
            return
        name = err.name()
        if name not in self._errors_logged:
            self._errors_logged.add(name)
            log.warning("Kafka: %s", err.str())

    def _kafka_back(self) -> None:
        self.link.answered("buffered ticks are being delivered")


# -- running a source ---------------------------------------------------------------------


class Runner:
    """Feeds a source's batches into a sink until done; `stop()` ends it from any thread.

    `metrics` are the sink's when it counts what it takes itself (`TickProducer.publish`);
    without them the Runner counts the ticks the sink says it took.
    """

    def __init__(
        self,
        source: Source,
        sink: Callable[[Sequence[Tick]], int],
        *,
        metrics: ProducerMetrics | None = None,
        max_ticks: int | None = None,
        duration: float | None = None,
        log_interval: float | None = None,
        verb: str = "published",
        on_batch: Callable[[Batch], None] | None = None,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self.source = source
        self.sink = sink
        self.metrics = metrics or ProducerMetrics()
        self._sink_counts = metrics is not None
        self.max_ticks = max_ticks
        self.duration = duration
        # one line per cycle for a polling source; a periodic summary for fast ones
        self.log_interval = (
            log_interval
            if log_interval is not None
            else (0.0 if source.name == "coingecko" else 10.0)
        )
        self.verb = verb
        self.on_batch = on_batch
        self.on_stop = on_stop
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()
        self.source.stop()
        if self.on_stop is not None:
            self.on_stop()

    @property
    def stopping(self) -> bool:
        return self._stopped.is_set()

    def run(self) -> ProducerMetrics:
        """Run to the end; the run's metrics (`seconds` set)."""
        metrics = self.metrics
        started = time.monotonic()
        timer: threading.Timer | None = None
        if self.duration is not None:
            timer = threading.Timer(self.duration, self.stop)
            timer.daemon = True
            timer.start()
        logged = metrics.snapshot()
        taken = 0
        last_log = started
        try:
            for batch in self.source:
                ticks: Sequence[Tick] = batch.ticks
                if self.max_ticks is not None:
                    ticks = ticks[: max(0, self.max_ticks - taken)]
                count = self.sink(ticks) if ticks else 0
                taken += count
                now_wall = time.time()
                if not self._sink_counts:
                    metrics.count_sent(count, now_wall)
                metrics.observe(batch, source=self.source.name, sent=count, at=now_wall)
                if self.on_batch is not None:
                    self.on_batch(batch)
                now = time.monotonic()
                if now - last_log >= self.log_interval or batch.error:
                    logged = self._log(batch, logged)
                    last_log = now
                if (self.max_ticks is not None and taken >= self.max_ticks) or self.stopping:
                    break
        finally:
            if timer is not None:
                timer.cancel()
            metrics.seconds = time.monotonic() - started
            if metrics.batches > logged.batches and self.log_interval > 0:
                self._log(None, logged)
        return metrics

    def _log(self, batch: Batch | None, logged: Counts) -> Counts:
        """One line of what happened since `logged`; returns the new mark."""
        now = self.metrics.snapshot()
        window = now.since(logged)
        if batch is not None and self.log_interval == 0:
            head = f"cycle {batch.cycle}"
            if batch.error:
                head += f" failed ({batch.error.replace('_', ' ')})"
        else:
            head = f"{window.batches} batch{'es' if window.batches != 1 else ''}"
        skipped = window.skipped.total()
        log.info(
            "%s: %s %d, skipped %d%s, unchanged %d%s",
            head,
            self.verb,
            window.sent,
            skipped,
            f" ({reasons(window.skipped)})" if skipped else "",
            window.unchanged,
            f"; by source: {by_source(window)}" if len(window.source_batches) > 1 else "",
        )
        return now


class StatusReporter:
    """Keeps each source's status on the status topic: at start, whenever a batch changes it,
    and every `interval` seconds (a heartbeat, so a reader can tell a running producer's
    status from one left by a producer that is gone). With several sources (one tracker each),
    a batch counts for the one it names (`Batch.source`)."""

    def __init__(
        self,
        trackers: Sequence[StatusTracker],
        send: Callable[[SourceStatus], None],
        *,
        interval: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.trackers = {t.source: t for t in trackers}
        self.tracker = trackers[0]  # the one a batch without a source counts for
        self.send = send
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._report_all()
        self._thread = threading.Thread(target=self._beat, name="status-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def on_batch(self, batch: Batch) -> None:
        tracker = self.trackers.get(batch.source or "", self.tracker)
        with self._lock:
            changed = tracker.observe(batch, self.clock())
        if changed:
            status = self._report(tracker)
            if status.state not in ("live", "simulated", "replay"):
                log.warning("source %s is %s: %s", status.source, status.state, status.detail)
            else:
                log.info("source %s is %s", status.source, status.state)

    def _report(self, tracker: StatusTracker) -> SourceStatus:
        with self._lock:
            status = tracker.status(self.clock())
        self.send(status)
        return status

    def _report_all(self) -> None:
        for tracker in self.trackers.values():
            self._report(tracker)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            self._report_all()


def publish_source(
    source: Source,
    producer: TickProducer,
    *,
    max_ticks: int | None = None,
    duration: float | None = None,
    log_interval: float | None = None,
    status: StatusReporter | None = None,
) -> Runner:
    """A Runner that publishes `source` with `producer`, counting into the producer's metrics;
    with `status`, reports the source's state after every batch."""
    return Runner(
        source,
        producer.publish,
        metrics=producer.metrics,
        max_ticks=max_ticks,
        duration=duration,
        log_interval=log_interval,
        on_batch=status.on_batch if status is not None else None,
        on_stop=producer.interrupt,
    )


class _Backfilling(Protocol):
    def backfill_to(self, sink: BackfillSink, *, window_seconds: float, retry: float) -> None: ...


class BackfillPublisher:
    """A source's `BackfillSink`: its backfill windows go to the windows topic through the
    producer's client (key = coin, the Spark job's JSON), counted in the producer's metrics;
    one log line per failed coin and one summary line."""

    def __init__(self, producer: TickProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self.metrics = producer.metrics
        self._lock = threading.Lock()
        self._coins: set[str] = set()
        self._failed: set[str] = set()

    @property
    def coins(self) -> int:
        """Coins whose backfill was published."""
        with self._lock:
            return len(self._coins)

    def publish(self, coin: str, windows: Sequence[WindowAggregate]) -> int:
        sent = self.producer.publish_records(self.topic, [encode_window(w) for w in windows])
        self.metrics.count_backfill(sent)
        with self._lock:
            retried = coin in self._failed
            self._coins.add(coin)
            self._failed.discard(coin)
        if retried:
            log.info("backfill of %s: %d windows (on a retry)", coin, sent)
        return sent

    def failed(self, coin: str, reason: str, retry_in: float | None) -> None:
        self.metrics.count_backfill_failure(reason)
        with self._lock:
            self._failed.add(coin)
        later = f"; trying again in {retry_in:g} s" if retry_in is not None else ""
        log.warning("backfill of %s skipped (%s)%s", coin, reason.replace("_", " "), later)

    def round_done(self, coins: int, seconds: float) -> None:
        with self._lock:
            done, failed = len(self._coins), len(self._failed)
        log.info(
            "backfill: %s windows for %d of %d coins in %.2f s to %s%s",
            f"{self.metrics.backfill_windows:,}",
            done,
            coins,
            seconds,
            self.topic,
            f"; {failed} coin(s) failed, tried again later" if failed else "",
        )


def enable_backfill(
    source: Source, producer: TickProducer, settings: Settings
) -> BackfillPublisher | None:
    """Have `source` publish its past as backfill windows, when `producer.backfill` is on and the
    source can (CoinGecko, simulated; not replay). The sink, or None."""
    if not settings.producer.backfill or not hasattr(source, "backfill_to"):
        return None
    topic = settings.kafka.topic_windows
    if not producer.has_topic(topic):
        log.warning(
            "no backfill: the windows topic %s does not exist on %s", topic, producer.bootstrap
        )
        return None
    sink = BackfillPublisher(producer, topic)
    backfilling: _Backfilling = source  # type: ignore[assignment]
    backfilling.backfill_to(
        sink,
        window_seconds=settings.spark.window_seconds,
        retry=settings.producer.backfill_retry,
    )
    return sink


# -- command-line support -----------------------------------------------------------------


def with_producer_overrides(settings: Settings, **overrides: Any) -> Settings:
    """Settings with `producer.*` fields replaced (None means "keep"), validated again."""
    changes = {k: v for k, v in overrides.items() if v is not None}
    if not changes:
        return settings
    producer = type(settings.producer).model_validate({**settings.producer.model_dump(), **changes})
    return settings.model_copy(update={"producer": producer})


def run_until_signalled(runner: Runner) -> ProducerMetrics:
    """Run in the foreground: the first Ctrl-C (or SIGTERM) stops the source and lets the
    caller flush; a second Ctrl-C aborts."""
    import signal

    def handle(signum: int, _frame: object) -> None:
        if runner.stopping:
            raise KeyboardInterrupt
        log.info("stopping (%s): flushing; Ctrl-C again to abort", signal.Signals(signum).name)
        runner.stop()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return runner.run()
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
