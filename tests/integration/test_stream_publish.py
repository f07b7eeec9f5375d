"""The windows sink's transactions on a real broker: a batch is visible whole or not at all,
and a batch committed before a crash is known after the restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest
from confluent_kafka import Producer

from cryptopulse.stream.job import LIVE
from cryptopulse.stream.parse import parse_ticks, valid_ticks
from cryptopulse.stream.publish import (
    TAIL_RECORDS,
    BatchPublisher,
    KafkaDeliveryError,
    parse_header,
    sink_id,
)
from cryptopulse.stream.sinks import SinkStats, WindowSink
from tests.factories import kafka_rows, tick
from tests.kafka_helpers import read_to_end

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.integration

# Begins a transaction, writes records, says so, and waits to be killed before committing.
HALF_DONE = """
import sys, time
from cryptopulse.stream.publish import BatchPublisher
publisher = BatchPublisher(sys.argv[1], sys.argv[2], sys.argv[3])
publisher.start()
producer = publisher.producer
producer.begin_transaction()
for i in range(50):
    producer.produce(sys.argv[2], key=b"bitcoin", value=b'{"half": %d}' % i)
producer.flush(30)
print("written", flush=True)
time.sleep(600)
"""


def committed_values(bootstrap: str, topic: str) -> list[bytes]:
    """The values consumers see: librdkafka reads committed records only by default."""
    return [value for _, value in read_to_end(bootstrap, topic)]


def test_header_names_the_sink_and_the_batch() -> None:
    assert parse_header(b"abc:12", "abc") == 12
    assert parse_header(b"other:12", "abc") is None
    assert parse_header(b"abc:x", "abc") is None
    assert parse_header(None, "abc") is None
    assert sink_id("/a/checkpoint") == sink_id("/a/checkpoint") != sink_id("/b/checkpoint")


def test_a_batch_committed_before_a_crash_is_known_after_the_restart(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("windows")
    sink = sink_id(topic)
    first = BatchPublisher(kafka_bootstrap, topic, sink)
    assert first.committed() == -1
    first.publish(4, [("bitcoin", b'{"b": 4}')])
    first.publish(5, [("bitcoin", b'{"b": 5}'), ("solana", b'{"b": 5}')])
    # the job dies before saving its state: a new instance reads the newest batch back
    again = BatchPublisher(kafka_bootstrap, topic, sink)
    assert again.committed() == 5
    other = BatchPublisher(kafka_bootstrap, topic, sink_id("another checkpoint"))
    assert other.committed() == -1  # another sink's batches are not ours
    assert sorted(committed_values(kafka_bootstrap, topic)) == sorted(
        [b'{"b": 4}', b'{"b": 5}', b'{"b": 5}']
    )


def test_the_newest_batch_is_found_behind_other_writers_records(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    """The producer's backfill shares the windows topic: thousands of its records may follow
    the sink's last batch. Everything written since the sink's last save is read back."""
    topic = new_topic("windows")
    sink = sink_id(topic)
    first = BatchPublisher(kafka_bootstrap, topic, sink)
    first.publish(6, [("bitcoin", b'{"b": 6}')])
    saved_at = time.time()  # the sink saved its state after batch 6 ...
    first.publish(7, [("bitcoin", b'{"b": 7}')])  # ... and died after committing batch 7
    backfill = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 20})
    for i in range(3 * TAIL_RECORDS):
        backfill.produce(topic, key="bitcoin", value=b'{"kind": "backfill", "i": %d}' % i)
    assert backfill.flush(30) == 0
    assert BatchPublisher(kafka_bootstrap, topic, sink).committed(since=lambda: saved_at) == 7
    # Without the save time only the tail is read: batch 7 is out of reach there.
    assert BatchPublisher(kafka_bootstrap, topic, sink).committed() == -1


def test_a_batch_killed_half_way_is_never_seen_and_its_rerun_is_written_whole(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("windows")
    sink = sink_id(topic)
    proc = subprocess.Popen(
        [sys.executable, "-c", HALF_DONE, kafka_bootstrap, topic, sink],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"written"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    restarted = BatchPublisher(kafka_bootstrap, topic, sink)  # fences the killed one
    assert restarted.committed() == -1
    restarted.publish(7, [("bitcoin", b'{"b": 7}')])
    assert committed_values(kafka_bootstrap, topic) == [b'{"b": 7}']


def test_the_live_sink_knows_its_last_commit_before_its_first_batch_and_skips_its_rerun(
    spark: SparkSession, kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic("windows")
    sink = sink_id(topic)
    killed = BatchPublisher(kafka_bootstrap, topic, sink)
    killed.publish(3, [("bitcoin", b'{"b": 3}')])  # then the job died before saving its state
    stats = SinkStats()
    live = WindowSink(
        LIVE,
        publisher=BatchPublisher(kafka_bootstrap, topic, sink),
        poster=None,
        state_file=tmp_path / "sink-state.json",
        window_seconds=30,
        watermark_ms=10_000,
        stats=stats,
    )
    live.recover()  # as the job does before starting its query
    with pytest.raises(KafkaDeliveryError):  # the predecessor is fenced already
        killed.publish(4, [("bitcoin", b'{"b": 4}')])
    ticks = valid_ticks(parse_ticks(kafka_rows(spark, [tick("bitcoin", 1, 100.0)])))
    live(ticks, 3)  # Spark's re-run of the batch committed before the crash
    assert stats.batches_skipped == 1
    live(ticks, 4)
    first, *rest = committed_values(kafka_bootstrap, topic)
    assert first == b'{"b": 3}'
    assert [(r["coin"], r["final"]) for r in map(orjson.loads, rest)] == [("bitcoin", False)]
