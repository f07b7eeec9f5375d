"""The producer without a broker: config, validation, delivery accounting, the run loop."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from cryptopulse.backfill import Point, to_windows
from cryptopulse.config import load_settings
from cryptopulse.errors import CryptoPulseError
from cryptopulse.platform.ports import free_port
from cryptopulse.producer import (
    BackfillPublisher,
    Runner,
    StatusReporter,
    TickProducer,
    enable_backfill,
    kafka_config,
    publish_source,
    with_producer_overrides,
)
from cryptopulse.schema import SourceStatus, Tick
from cryptopulse.sources.base import Batch, FakeClock
from cryptopulse.sources.simulated import SimulatedMarket, SimulatedSource
from cryptopulse.status import StatusTracker

START = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)


class FakeError:
    def __init__(self, name: str) -> None:
        self._name = name

    def name(self) -> str:
        return self._name

    def str(self) -> str:
        return f"{self._name}: broker said no"


class FakeKafka:
    """Stands in for confluent_kafka.Producer: records records, delivers on poll/flush."""

    def __init__(self, config: dict[str, Any], *, fail: set[str] | None = None) -> None:
        self.config = config
        self.records: list[tuple[str, bytes, bytes]] = []
        self.pending: list[tuple[Callable[..., None], str]] = []
        self.fail = fail or set()
        self.full_once = True
        self.undeliverable = 0
        self.topics: dict[str, None] = {"ticks": None}

    def list_topics(self, timeout: float) -> Any:
        return SimpleNamespace(topics=self.topics)

    def produce(
        self, topic: str, value: bytes, key: bytes, on_delivery: Callable[..., None]
    ) -> None:
        if self.full_once and len(self.records) == 3:
            self.full_once = False
            raise BufferError("queue full")
        self.records.append((topic, key, value))
        self.pending.append((on_delivery, key.decode()))

    def poll(self, timeout: float = 0) -> int:
        pending, self.pending = self.pending, []
        for callback, coin in pending:
            callback(FakeError("_MSG_TIMED_OUT") if coin in self.fail else None, None)
        return len(pending)

    def flush(self, timeout: float = 0) -> int:
        self.poll()
        return self.undeliverable


def _ticks(count: int = 10) -> list[Tick]:
    return SimulatedMarket(10, seed=1, start=START).ticks(count)


def _producer(**kwargs: Any) -> tuple[TickProducer, list[FakeKafka]]:
    made: list[FakeKafka] = []

    def factory(config: dict[str, Any]) -> FakeKafka:
        made.append(FakeKafka(config, **kwargs))
        return made[-1]

    return TickProducer("127.0.0.1:1", "ticks", producer_factory=factory), made  # type: ignore[arg-type]


def test_kafka_config_is_safe_by_default() -> None:
    config = kafka_config("h:1")
    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"
    assert config["compression.type"] == "lz4"
    assert kafka_config("h:1", compression="zstd", extra={"linger.ms": 0})["linger.ms"] == 0


def test_publish_keys_by_coin_and_counts_deliveries() -> None:
    producer, made = _producer(fail={"solana"})
    producer.start()
    ticks = _ticks(10)
    assert producer.publish(ticks) == 10
    assert producer.stop() == 0
    kafka = made[0]
    assert [k.decode() for _, k, _ in kafka.records] == [t.coin for t in ticks]
    assert all(topic == "ticks" for topic, _, _ in kafka.records)
    first = orjson.loads(kafka.records[0][2])
    assert first["coin"] == "bitcoin" and first["timestamp"] == "2026-11-24T22:00:00Z"
    assert producer.metrics.sent == 10
    assert producer.metrics.delivered == 9
    assert producer.metrics.failed == 1
    assert producer.metrics.delivery_errors == {"_MSG_TIMED_OUT": 1}
    assert producer.metrics.registry.get_sample_value("cryptopulse_producer_sent_total") == 10
    assert (
        producer.metrics.registry.get_sample_value(
            "cryptopulse_producer_delivery_failures_total", {"error": "_MSG_TIMED_OUT"}
        )
        == 1
    )


def test_invalid_ticks_are_not_sent(caplog: pytest.LogCaptureFixture) -> None:
    producer, made = _producer()
    producer.start()
    good = _ticks(2)
    bad = Tick.model_construct(**{**good[0].model_dump(), "price": -1.0})
    nan = Tick.model_construct(**{**good[0].model_dump(), "coin": "Not Valid"})
    assert producer.publish([good[0], bad, nan, good[1]]) == 2
    assert producer.metrics.invalid == 2
    assert len(made[0].records) == 2
    assert "fails the schema" in caplog.text


def test_stop_reports_undelivered(caplog: pytest.LogCaptureFixture) -> None:
    producer, made = _producer()
    producer.start()
    producer.publish(_ticks(5))
    made[0].undeliverable = 2
    assert producer.stop() == 2
    assert producer.metrics.failed == 2
    assert "not delivered" in caplog.text
    assert producer.stop() == 0  # idempotent


def test_publish_before_start_is_a_bug() -> None:
    producer, _ = _producer()
    with pytest.raises(RuntimeError):
        producer.publish(_ticks(1))


def test_unreachable_broker_is_a_plain_error() -> None:
    producer = TickProducer(f"127.0.0.1:{free_port()}", "ticks")
    with pytest.raises(CryptoPulseError, match="cryptopulse kafka start"):
        producer.start(check_timeout=1.0)


class ListSource:
    name = "coingecko"

    def __init__(self, batches: list[Batch]) -> None:
        self.batches = batches
        self.stopped = False

    def __iter__(self) -> Iterator[Batch]:
        for batch in self.batches:
            if self.stopped:
                return
            yield batch

    def stop(self) -> None:
        self.stopped = True

    def close(self) -> None:
        pass


def test_one_log_line_per_cycle_with_reasons(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cryptopulse.producer")
    ticks = _ticks(10)
    source = ListSource(
        [
            Batch(ticks[:8], skipped=Counter({"missing_coin": 1, "null_price": 1}), cycle=1),
            Batch([], unchanged=10, cycle=2),
            Batch([], cycle=3, error="rate_limited"),
        ]
    )
    producer, _ = _producer()
    producer.start()
    result = publish_source(source, producer).run()
    producer.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "cryptopulse.producer"]
    assert "cycle 1: published 8, skipped 2 (missing_coin 1, null_price 1), unchanged 0" in lines
    assert "cycle 2: published 0, skipped 0, unchanged 10" in lines
    assert "cycle 3 failed (rate limited): published 0, skipped 0, unchanged 0" in lines
    assert result.sent == 8 and result.unchanged == 10
    assert producer.metrics.failed_cycles == {"rate_limited": 1}
    assert producer.metrics.skipped == {"missing_coin": 1, "null_price": 1}
    registry = producer.metrics.registry
    assert registry.get_sample_value("cryptopulse_producer_unchanged_total") == 10
    assert (
        registry.get_sample_value("cryptopulse_producer_skipped_total", {"reason": "null_price"})
        == 1
    )


def test_runner_stops_at_max_ticks() -> None:
    source = SimulatedSource(
        SimulatedMarket(10, start=START), paced=False, max_batch=7, clock=FakeClock()
    )
    sink: list[Tick] = []

    def write(ticks: Any) -> int:
        sink.extend(ticks)
        return len(ticks)

    result = Runner(source, write, max_ticks=25).run()
    assert result.sent == 25 and len(sink) == 25


def test_runner_stops_after_duration() -> None:
    source = SimulatedSource(SimulatedMarket(10, rate=1.0, start=START))  # real clock, paced
    result = Runner(source, lambda ticks: len(ticks), duration=0.3).run()
    assert 0 < result.sent < 100
    assert result.seconds < 5


def test_overrides_are_validated() -> None:
    settings = load_settings()
    changed = with_producer_overrides(settings, source="simulated", simulated_rate=5.0, seed=None)
    assert changed.producer.source == "simulated" and changed.producer.simulated_rate == 5.0
    assert changed.producer.seed == settings.producer.seed
    with pytest.raises(ValueError):
        with_producer_overrides(settings, simulated_rate=0)
    with pytest.raises(ValueError):
        with_producer_overrides(settings, source="nasdaq")


def test_runner_reports_status_after_every_batch() -> None:
    source = ListSource(
        [
            Batch(_ticks(3), cycle=1),
            Batch([], cycle=2, error="rate_limited"),
            Batch([], cycle=3, error="key_error"),
            Batch([], unchanged=10, cycle=4),
        ]
    )
    sent: list[SourceStatus] = []
    now = [1_800_000_000.0]
    reporter = StatusReporter(
        [StatusTracker("coingecko")], sent.append, interval=3600, clock=lambda: now[0]
    )
    producer, _ = _producer()
    producer.start()
    reporter.start()
    runner = publish_source(source, producer, status=reporter)
    runner.run()
    reporter.stop()
    assert [s.state for s in sent] == ["connecting", "live", "degraded", "unreachable", "live"]
    assert "rate limited" in sent[2].detail and "API key" in sent[3].detail
    assert all(s.source == "coingecko" for s in sent)


def test_heartbeat_repeats_the_status_with_a_new_time() -> None:
    sent: list[SourceStatus] = []
    clock = iter(float(t) for t in range(1_800_000_000, 1_800_001_000))
    reporter = StatusReporter(
        [StatusTracker("simulated")], sent.append, interval=0.01, clock=lambda: next(clock)
    )
    reporter.start()
    deadline = time.monotonic() + 10
    while len(sent) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    reporter.stop()
    assert len(sent) >= 3
    assert {s.state for s in sent} == {"simulated"}
    times = [s.updated_at for s in sent]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_the_logs_and_metrics_read_one_set_of_counts() -> None:
    source = ListSource(
        [
            Batch(_ticks(3), cycle=1, requests=4, retries=3),
            Batch([], cycle=2, requests=1, error="http_500", skipped=Counter({"null_price": 2})),
        ]
    )
    producer, _ = _producer()
    producer.start()
    result = publish_source(source, producer).run()
    producer.stop()
    assert result is producer.metrics
    registry = producer.metrics.registry
    assert (result.requests, result.retries) == (5, 3)
    assert registry.get_sample_value("cryptopulse_producer_requests_total") == 5
    assert registry.get_sample_value("cryptopulse_producer_retries_total") == 3
    assert (
        registry.get_sample_value(
            "cryptopulse_producer_failed_cycles_total", {"reason": "http_500"}
        )
        == 1
    )
    assert result.summary() == ("sent 3, delivered 3, skipped 2 (null_price 2), failed cycles 1")


# -- backfill windows ------------------------------------------------------------------------


def _backfill_windows(coin: str, count: int) -> list[Any]:
    points = [Point(START.timestamp() + 30 * i, 100.0 + i) for i in range(count)]
    made = to_windows(points, source="simulated", coin=coin, symbol=coin[:3], window_seconds=30)
    return made.windows


def test_backfill_windows_go_to_the_windows_topic_counted_apart_from_ticks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer, made = _producer(fail={"solana"})
    producer.start()
    sink = BackfillPublisher(producer, "windows")
    caplog.set_level(logging.INFO, logger="cryptopulse.producer")
    assert sink.publish("bitcoin", _backfill_windows("bitcoin", 4)) == 4
    assert sink.publish("solana", _backfill_windows("solana", 2)) == 2
    sink.failed("ethereum", "rate_limited", 600.0)
    sink.round_done(3, 0.5)
    producer.stop()
    kafka = made[0]
    assert {topic for topic, _, _ in kafka.records} == {"windows"}
    assert [k for _, k, _ in kafka.records] == [b"bitcoin"] * 4 + [b"solana"] * 2
    first = orjson.loads(kafka.records[0][2])
    assert first["kind"] == "backfill" and first["window_start"] == "2026-11-24T22:00:00.000Z"
    metrics = producer.metrics
    assert (metrics.sent, metrics.delivered, metrics.failed) == (0, 0, 0)  # ticks untouched
    assert (metrics.backfill_windows, metrics.backfill_delivered) == (6, 4)
    assert metrics.backfill_undelivered == 2
    assert metrics.backfill_failures == {"rate_limited": 1}
    registry = metrics.registry
    assert registry.get_sample_value("cryptopulse_producer_backfill_windows_total") == 6
    assert (
        registry.get_sample_value(
            "cryptopulse_producer_backfill_failures_total", {"reason": "rate_limited"}
        )
        == 1
    )
    lines = [r.getMessage() for r in caplog.records if "backfill" in r.getMessage()]
    assert "backfill of ethereum skipped (rate limited); trying again in 600 s" in lines
    assert any(line.startswith("backfill: 6 windows for 2 of 3 coins") for line in lines)
    assert "backfill windows 6" in metrics.summary()


def test_backfill_is_enabled_only_when_on_the_source_can_and_the_topic_exists() -> None:
    settings = load_settings()
    topic = settings.kafka.topic_windows
    producer, made = _producer()
    producer.start()
    source = SimulatedSource(SimulatedMarket(2, start=START), paced=False, clock=FakeClock())
    assert enable_backfill(source, producer, settings) is None  # no windows topic
    made[0].topics[topic] = None
    sink = enable_backfill(source, producer, settings)
    assert sink is not None and sink.topic == topic
    assert source._backfill_to is not None
    off = with_producer_overrides(settings, backfill=False)
    fresh = SimulatedSource(SimulatedMarket(2, start=START), paced=False, clock=FakeClock())
    assert enable_backfill(fresh, producer, off) is None and fresh._backfill_to is None
    replay = SimpleNamespace(name="replay")  # a source without backfill_to
    assert enable_backfill(replay, producer, settings) is None  # type: ignore[arg-type]
