"""Dead letters are best effort: a dead letter that cannot be written is counted and logged,
never raised, and never stops the live windows query (real Kafka, real Spark)."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from cryptopulse.config import Settings
from cryptopulse.platform.ports import free_port
from cryptopulse.stream.job import CHECKPOINT_VERSION, LIVE, StreamJob
from cryptopulse.stream.parse import dead_letters, parse_ticks
from cryptopulse.stream.sinks import DeadLetterSink, SinkStats, dead_letter_producer
from tests.factories import finals, iso, kafka_rows, tick
from tests.kafka_helpers import TopicReader, send
from tests.waiting import wait_for

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = pytest.mark.integration


def small_topic(bootstrap: str, max_bytes: int = 1024) -> str:
    """A topic that refuses records (batches) over `max_bytes`."""
    name = f"dlq-small-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=1, config={"max.message.bytes": str(max_bytes)})]
    )
    futures[name].result(timeout=60)
    return name


# Random bytes: the dead letter's excerpt does not compress under the topic's limit.
NOISE = random.Random(7).randbytes(10_000)


def letters(spark: SparkSession) -> DataFrame:
    """Two dead letters: one of ~6 KiB (its excerpt is 4 KiB), one of a few hundred bytes."""
    return dead_letters(parse_ticks(kafka_rows(spark, [NOISE, b"nope"])))


def test_refused_dead_letters_are_counted_not_raised(
    spark: SparkSession, kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = small_topic(kafka_bootstrap)
    stats = SinkStats()
    sink = DeadLetterSink(
        "dead-letters",
        producer=dead_letter_producer(kafka_bootstrap, delivery_timeout=10),
        topic=topic,
        state_file=tmp_path / "sink-state.json",
        stats=stats,
        delivery_timeout=10,
    )
    sink(letters(spark), 0)
    assert (stats.dead_letters_published, stats.dead_letters_failed) == (1, 1)
    assert orjson.loads((tmp_path / "sink-state.json").read_bytes()) == {"batch_id": 0}
    # The same batch again (Spark re-runs it after a crash): already published, skipped.
    sink(letters(spark), 0)
    assert (stats.dead_letters_published, stats.dead_letters_failed) == (1, 1)
    assert stats.batches_skipped == 1
    # A restarted sink reads its state; an unreadable state file starts afresh.
    again = DeadLetterSink(
        "dead-letters",
        producer=sink.producer,
        topic=topic,
        state_file=tmp_path / "sink-state.json",
        stats=stats,
    )
    assert again.last_batch_id == 0
    (tmp_path / "torn.json").write_bytes(b'{"batch_')
    torn = DeadLetterSink(
        "dead-letters",
        producer=sink.producer,
        topic=topic,
        state_file=tmp_path / "torn.json",
        stats=stats,
    )
    assert torn.last_batch_id == -1


def test_an_unreachable_broker_costs_the_delivery_timeout_and_raises_nothing(
    spark: SparkSession, tmp_path: Path
) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    stats = SinkStats()
    sink = DeadLetterSink(
        "dead-letters",
        producer=dead_letter_producer(nowhere, delivery_timeout=2),
        topic="dlq",
        state_file=tmp_path / "sink-state.json",
        stats=stats,
        delivery_timeout=2,
    )
    started = time.monotonic()
    sink(letters(spark), 3)
    assert time.monotonic() - started < 30
    assert (stats.dead_letters_published, stats.dead_letters_failed) == (0, 2)


def job_settings(base: Settings, tmp_path: Path, ticks: str, windows: str, dlq: str) -> Settings:
    """A job of its own: its data folder and topics, from the start of the ticks, no API."""
    settings = base.model_copy(deep=True)
    settings.data_dir = tmp_path
    settings.kafka.topic_ticks, settings.kafka.topic_windows = ticks, windows
    settings.kafka.topic_dlq = dlq
    settings.spark.starting_offsets = "earliest"
    settings.spark.trigger_seconds = 0.5
    settings.spark.post_to_api = False
    return settings


def test_the_job_keeps_aggregating_when_its_dead_letters_are_refused(
    spark: SparkSession,
    session_settings: Settings,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    tmp_path: Path,
) -> None:
    settings = job_settings(
        session_settings,
        tmp_path,
        new_topic("ticks", partitions=1),
        new_topic("windows", partitions=1),
        small_topic(kafka_bootstrap),
    )
    send(
        kafka_bootstrap,
        settings.kafka.topic_ticks,
        [
            ("alpha", tick("alpha", 1, 10.0)),
            (None, NOISE),  # its dead letter (~6 KiB) is over the topic's limit
            ("alpha", tick("alpha", 2, 20.0)),
            ("alpha", tick("alpha", 100, 1.0)),  # closes [T0, T0 + 30 s)
        ],
    )
    job = StreamJob(settings, spark)
    windows = TopicReader(kafka_bootstrap, settings.kafka.topic_windows, f"w-{uuid.uuid4().hex}")
    job.start()
    try:
        start = iso(0).replace("Z", ".000Z")
        records = windows.until(lambda rs: ("test", "alpha", start) in finals(rs))
        [window] = finals(records)[("test", "alpha", start)]
        assert (window["avg_price"], window["tick_count"]) == (15.0, 2)
        wait_for(lambda: job.stats.dead_letters_failed >= 1, 90, "the refused dead letter's count")
        assert job.dead_lettered == 1
        for query in job.queries:
            assert query.isActive and query.exception() is None, query.name
    finally:
        job.stop()
        windows.close()


def test_rejects_of_batches_committed_before_a_crash_are_written_after_the_restart(
    spark: SparkSession,
    session_settings: Settings,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    tmp_path: Path,
) -> None:
    """The dead letters come after their batch commits; a job stopped in between (here: its
    record of handled batches set back, as a crash would leave it) writes them on restart."""
    settings = job_settings(
        session_settings,
        tmp_path,
        new_topic("ticks", partitions=2),
        new_topic("windows", partitions=1),
        new_topic("dlq", partitions=1),
    )
    state = tmp_path / "checkpoints" / CHECKPOINT_VERSION / LIVE / "dead-letter-state.json"
    dlq = TopicReader(kafka_bootstrap, settings.kafka.topic_dlq, f"d-{uuid.uuid4().hex}")
    send(kafka_bootstrap, settings.kafka.topic_ticks, [("alpha", tick("alpha", 1, 10.0))])
    first = StreamJob(settings, spark)
    first.start()
    try:
        handled = wait_for(lambda: state.exists() and orjson.loads(state.read_bytes()), 90)
        send(kafka_bootstrap, settings.kafka.topic_ticks, [(None, b"nope")])
        dlq.until(lambda values: len(values) == 1)
    finally:
        first.stop()
    state.write_bytes(orjson.dumps(handled))  # the crash came before the worker wrote it
    second = StreamJob(settings, spark)
    second.start()
    try:
        letters = dlq.until(lambda values: len(values) == 2)
        assert [v["reason"] for v in letters] == [
            "not valid JSON or a field has the wrong type"
        ] * 2
        assert letters[0]["source_offset"] == letters[1]["source_offset"]
        assert second.stats.dead_letters_failed == 0
    finally:
        second.stop()
        dlq.close()
