"""Hostile records on the ticks topic, interleaved with valid ticks, through the real job.

Megabytes of control bytes, invalid UTF-8, JSON nested 10,000 deep, numbers past a double's
range, a tick dated next year, an empty value: the job stays up, every bad record is on the
dead-letter topic with its reason in a record of a few KiB, and the valid coins' windows are
exact.
"""

from __future__ import annotations

import base64
import hashlib
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from confluent_kafka import Consumer, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from cryptopulse.config import Settings
from cryptopulse.stream.job import StreamJob
from cryptopulse.stream.parse import EXCERPT_BYTES
from tests.integration.test_stream_job import finals, iso, tick

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.integration

NOT_JSON = "not valid JSON or a field has the wrong type"
MiB = 1024 * 1024


ANY = "(the key or none)"  # what a record that is not JSON may tell of its coin


@dataclass
class Sent:
    key: str | None
    value: bytes | None
    reason: str | None = None  # None: a valid tick
    coin: str | None = None  # the coin its dead letter names
    partition: int = -1
    offset: int = -1


def control_bytes(size: int) -> bytes:
    return bytes(i % 32 for i in range(size))


def deep_json(depth: int) -> bytes:
    valid = orjson.loads(tick("beta", 5, 1.0))
    head = orjson.dumps(valid)[:-1]
    return head + b',"nested":' + b"[" * depth + b"]" * depth + b"}"


def hostile_records() -> list[Sent]:
    next_year = (datetime.now(UTC) + timedelta(days=366)).isoformat().replace("+00:00", "Z")
    bad_utf8 = tick("alpha", 6, 1.0).replace(b'"alp"', b'"a\xc3\x28p"')
    huge = tick("gamma", 7, 1.0).replace(b'"price":1.0', b'"price":1e400')
    future = tick("gamma", 8, 1.0).replace(iso(8).encode(), next_year.encode())
    return [
        Sent(None, control_bytes(1_000_000), NOT_JSON),  # 1 MB of control bytes
        Sent("alpha", bad_utf8, "not valid UTF-8", "alpha"),
        Sent(None, b"\xff\xfe\xfd" * 100, "not valid UTF-8"),
        Sent("beta", deep_json(10_000), NOT_JSON, ANY),
        Sent(None, b"[" * 10_000 + b"]" * 10_000, NOT_JSON),
        Sent(None, b'{"coin":' * 10_000, NOT_JSON),  # never closed
        Sent("gamma", huge, "price is not a finite number", "gamma"),
        Sent("gamma", future, "timestamp is in the future", "gamma"),
        Sent("beta", None, "empty value"),
    ]


def valid_ticks() -> list[Sent]:
    prices = {"alpha": [10.0, 12.0, 11.0, 9.0], "beta": [2.0, 2.5], "gamma": [100.0, 90.0, 95.0]}
    return [
        Sent(coin, tick(coin, 1 + 6 * i, price, 1.0))
        for coin, series in prices.items()
        for i, price in enumerate(series)
    ]


def interleave(good: list[Sent], bad: list[Sent]) -> list[Sent]:
    out: list[Sent] = []
    for i in range(max(len(good), len(bad))):
        out.extend(good[i : i + 1] + bad[i : i + 1])
    return out


def produce(bootstrap: str, topic: str, records: list[Sent]) -> None:
    """Send in order; each record learns its partition and offset."""
    producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 4 * MiB})

    def delivered(record: Sent) -> Callable[[Any, Message], None]:
        def report(err: Any, msg: Message) -> None:
            assert err is None, err
            record.partition, record.offset = msg.partition(), msg.offset()

        return report

    for record in records:
        producer.produce(topic, key=record.key, value=record.value, on_delivery=delivered(record))
        producer.poll(0)
    assert producer.flush(30) == 0


class RawReader:
    """A topic's records as (raw value bytes, key), read from the start."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"raw-{topic}",
                "auto.offset.reset": "earliest",
            }
        )
        self.consumer.subscribe([topic])
        self.records: list[tuple[bytes, bytes | None]] = []

    def until(self, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not done(self.values()):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; have {self.values()[-5:]}")
            for msg in self.consumer.consume(100, timeout=0.5):
                if msg.error() is None:
                    self.records.append((msg.value(), msg.key()))

    def values(self) -> list[dict[str, Any]]:
        return [orjson.loads(value) for value, _ in self.records]

    def close(self) -> None:
        self.consumer.close()


@pytest.fixture(scope="module")
def hostile_env(
    spark: SparkSession,
    session_settings: Settings,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    settings = session_settings.model_copy(deep=True)
    settings.data_dir = tmp_path_factory.mktemp("stream-hostile")
    ticks = f"ticks-hostile-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    created = admin.create_topics(
        [NewTopic(ticks, num_partitions=2, config={"max.message.bytes": str(2 * MiB)})]
    )
    created[ticks].result(timeout=60)
    settings.kafka.topic_ticks = ticks
    settings.kafka.topic_windows = new_topic("windows", partitions=2)
    settings.kafka.topic_dlq = new_topic("dlq", partitions=1)
    settings.spark.starting_offsets = "earliest"
    settings.spark.trigger_seconds = 0.5
    settings.spark.window_seconds = 30
    settings.spark.watermark_seconds = 5
    settings.spark.post_to_api = False
    good, bad = valid_ticks(), hostile_records()
    produce(kafka_bootstrap, ticks, interleave(good, bad))
    # Then a tick that moves the watermark past the window [T0, T0 + 30 s).
    produce(kafka_bootstrap, ticks, [Sent("alpha", tick("alpha", 100, 50.0))])
    job = StreamJob(settings, spark)
    job.start()
    windows = RawReader(kafka_bootstrap, settings.kafka.topic_windows)
    dlq = RawReader(kafka_bootstrap, settings.kafka.topic_dlq)
    try:
        yield {"job": job, "good": good, "bad": bad, "windows": windows, "dlq": dlq}
    finally:
        job.stop()
        windows.close()
        dlq.close()


@pytest.fixture(scope="module")
def dead_letters(hostile_env: dict[str, Any]) -> list[tuple[bytes, bytes | None]]:
    expected = len(hostile_env["bad"])
    hostile_env["dlq"].until(lambda values: len(values) >= expected)
    return hostile_env["dlq"].records


def test_every_bad_record_is_a_small_dead_letter_with_its_reason(
    hostile_env: dict[str, Any], dead_letters: list[tuple[bytes, bytes | None]]
) -> None:
    letters = {
        (d["source_partition"], d["source_offset"]): (d, raw, key)
        for raw, key in dead_letters
        for d in [orjson.loads(raw)]
    }
    expected: list[Sent] = hostile_env["bad"]
    assert len(dead_letters) == len(expected)  # nothing else, nothing twice
    for record in expected:
        letter, raw, key = letters[(record.partition, record.offset)]
        assert letter["reason"] == record.reason, letter
        assert len(raw) < 8 * 1024, (record.reason, len(raw))
        assert letter["size_bytes"] == len(record.value or b"")
        assert letter["sha256"] == hashlib.sha256(record.value or b"").hexdigest()
        # The coin (also the key) when the record names a valid one; never junk.
        coins = {None, record.key} if record.coin == ANY else {record.coin}
        assert letter["coin"] in coins, letter
        assert key == (letter["coin"].encode() if letter["coin"] else None)
    job: StreamJob = hostile_env["job"]
    assert job.stats.dead_letters_failed == 0


def test_the_excerpt_is_the_first_4_kib_of_the_value(
    hostile_env: dict[str, Any], dead_letters: list[tuple[bytes, bytes | None]]
) -> None:
    [big] = [r for r in hostile_env["bad"] if r.value and len(r.value) == 1_000_000]
    [letter] = [
        d
        for raw, _ in dead_letters
        for d in [orjson.loads(raw)]
        if (d["source_partition"], d["source_offset"]) == (big.partition, big.offset)
    ]
    assert base64.b64decode(letter["excerpt_b64"], validate=True) == control_bytes(EXCERPT_BYTES)
    assert letter["size_bytes"] == 1_000_000
    assert letter["sha256"] == hashlib.sha256(control_bytes(1_000_000)).hexdigest()
    assert letter["source_topic"] == hostile_env["job"].settings.kafka.topic_ticks
    assert letter["kafka_timestamp"].endswith("Z")


def test_valid_coins_windows_are_exact_and_the_job_stays_up(
    hostile_env: dict[str, Any], dead_letters: list[tuple[bytes, bytes | None]]
) -> None:
    start = iso(0).replace("Z", ".000Z")
    coins = ("alpha", "beta", "gamma")
    hostile_env["windows"].until(
        lambda values: all(("test", c, start) in finals(values) for c in coins)
    )
    got = finals(hostile_env["windows"].values())
    for coin in coins:
        prices = [
            orjson.loads(r.value)["price"]
            for r in hostile_env["good"]
            if r.key == coin and r.value is not None
        ]
        [window] = got[("test", coin, start)]
        assert {
            k: window[k] for k in ("avg_price", "open", "high", "low", "close", "tick_count")
        } == {
            "avg_price": pytest.approx(statistics.fmean(prices)),
            "open": prices[0],
            "high": max(prices),
            "low": min(prices),
            "close": prices[-1],
            "tick_count": len(prices),
        }, coin
    # Windows exist only for valid ticks: none for a junk record's coin or time.
    assert {(w["source"], w["coin"]) for w in hostile_env["windows"].values()} <= {
        ("test", c) for c in coins
    }
    job: StreamJob = hostile_env["job"]
    for query in job.queries:
        assert query.isActive and query.exception() is None, query.name
