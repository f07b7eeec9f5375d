"""The streaming job on real Kafka and real Spark: known ticks in, exact windows out."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from cryptopulse.config import Settings
from cryptopulse.schema import WindowAggregate
from cryptopulse.stream.job import LIVE, QueryStopped, StreamJob
from tests.factories import Finals, finals, iso, tick
from tests.fakes.receiver import Receiver
from tests.kafka_helpers import TopicReader, read_topic, send
from tests.waiting import wait_for

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def job_env(
    spark: SparkSession,
    session_settings: Settings,
    new_topic: Callable[..., str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    receiver = Receiver().start()
    settings = session_settings.model_copy(deep=True)
    settings.data_dir = tmp_path_factory.mktemp("stream-job")
    settings.kafka.topic_ticks = new_topic("ticks", partitions=2)
    settings.kafka.topic_windows = new_topic("windows", partitions=2)
    settings.kafka.topic_dlq = new_topic("dlq", partitions=1)
    settings.spark.starting_offsets = "earliest"
    settings.spark.trigger_seconds = 0.5
    settings.spark.window_seconds = 30
    settings.spark.watermark_seconds = 5
    settings.spark.post_retry_seconds = 2
    settings.api.ingest_url = receiver.url
    ready_file = settings.data_dir / "stream.ready"
    job = StreamJob(settings, spark, ready_file=ready_file)
    job.start()
    bootstrap = settings.kafka.bootstrap
    windows = TopicReader(
        bootstrap, settings.kafka.topic_windows, "w-" + settings.kafka.topic_windows
    )
    dlq = TopicReader(bootstrap, settings.kafka.topic_dlq, "d-" + settings.kafka.topic_dlq)
    try:
        yield {
            "settings": settings,
            "job": job,
            "receiver": receiver,
            "windows": windows,
            "dlq": dlq,
            "ready_file": ready_file,
        }
    finally:
        job.stop()
        windows.close()
        dlq.close()
        receiver.stop()


@pytest.fixture(scope="module")
def first_window(job_env: dict[str, Any]) -> Finals:
    """Window [T0, T0+30 s) for four coins, sent out of order, then closed by a later tick."""
    s: Settings = job_env["settings"]
    send(
        s.kafka.bootstrap,
        s.kafka.topic_ticks,
        [
            # alpha arrives out of order: the T0+10 tick comes last but is not the latest.
            ("alpha", tick("alpha", 1, 100.0, 1.0, volume=10, cap=1000)),
            ("alpha", tick("alpha", 20, 110.0, 3.0, volume=30, cap=1100)),
            ("alpha", tick("alpha", 10, 90.0, 2.0, volume=20, cap=900)),
            ("beta", tick("beta", 3, 2.0, -4.0)),
            ("beta", tick("beta", 4, 4.0, -6.0)),
            ("gamma", tick("gamma", 5, 1.0, 20.0)),
            ("delta", tick("delta", 29.999, 5.0, -2.0)),
            # The same coin and window from another source: a series of its own.
            ("alpha", tick("alpha", 2, 500.0, 1.0, source="other")),
        ],
    )
    # Wait until the live query has seen the window, then move event time past the watermark.
    job_env["windows"].until(
        lambda rs: {r["coin"] for r in rs if not r["final"]} >= {"alpha", "beta", "gamma", "delta"}
    )
    send(s.kafka.bootstrap, s.kafka.topic_ticks, [("alpha", tick("alpha", 100, 120.0))])
    start = iso(0).replace("Z", ".000Z")
    records = job_env["windows"].until(
        lambda rs: (
            all(("test", c, start) in finals(rs) for c in ("alpha", "beta", "gamma", "delta"))
            and ("other", "alpha", start) in finals(rs)
        )
    )
    return finals(records)


def test_exact_aggregates_with_out_of_order_arrival(first_window: Finals) -> None:
    start = iso(0).replace("Z", ".000Z")
    [alpha] = first_window[("test", "alpha", start)]
    assert alpha == {
        "source": "test",
        "coin": "alpha",
        "symbol": "alp",
        "window_start": start,
        "window_end": iso(30).replace("Z", ".000Z"),
        "avg_price": 100.0,
        "open": 100.0,
        "high": 110.0,
        "low": 90.0,
        "close": 110.0,
        "avg_change_24h": 2.0,
        "max_volume_24h": 30.0,
        "market_cap": 1100.0,  # latest by event time, though the T0+10 tick arrived last
        "tick_count": 3,
        "volatility": "Moving",
        "trend": "📈 Rising",
        "final": True,
        "kind": "live",
        "quote": None,  # no trades among these ticks: no trade figures
        "vwap": None,
        "traded_volume": None,
        "trade_count": None,
    }
    WindowAggregate.model_validate(alpha)


def test_another_source_of_the_same_coin_and_window_is_its_own_window(
    first_window: Finals,
) -> None:
    start = iso(0).replace("Z", ".000Z")
    [other] = first_window[("other", "alpha", start)]
    assert (other["avg_price"], other["open"], other["close"], other["tick_count"]) == (
        500.0,
        500.0,
        500.0,
        1,
    )
    WindowAggregate.model_validate(other)


def test_classification_at_the_boundaries(first_window: Finals) -> None:
    start = iso(0).replace("Z", ".000Z")
    labels = {
        coin: (
            first_window[("test", coin, start)][0]["volatility"],
            first_window[("test", coin, start)][0]["trend"],
        )
        for coin in ("beta", "gamma", "delta")
    }
    assert labels == {
        "beta": ("Volatile", "💥 Crashing"),  # average change exactly -5.0
        "gamma": ("Extreme", "🚀 Surging"),  # exactly 20.0
        "delta": ("Moving", "📉 Falling"),  # exactly -2.0, tick at the window's last millisecond
    }


def test_live_updates_precede_one_final(job_env: dict[str, Any], first_window: Finals) -> None:
    # A marker: one more tick in the open window [90 s, 120 s). Once its update is on the
    # topic, a batch after the one with the finals has run; the topic is then read to the end
    # of every partition, so a second final published before the marker is in what is read.
    s: Settings = job_env["settings"]
    send(s.kafka.bootstrap, s.kafka.topic_ticks, [("alpha", tick("alpha", 101, 121.0))])
    later = iso(90).replace("Z", ".000Z")
    job_env["windows"].until(
        lambda rs: any(
            r["coin"] == "alpha" and r["window_start"] == later and r["tick_count"] == 2 for r in rs
        )
    )
    records = read_topic(s.kafka.bootstrap, s.kafka.topic_windows)
    start = iso(0).replace("Z", ".000Z")
    for coin in ("alpha", "beta", "gamma", "delta"):
        mine = [
            r
            for r in records
            if (r["source"], r["coin"], r["window_start"]) == ("test", coin, start)
        ]
        assert [r["final"] for r in mine].count(True) == 1
        assert mine[-1]["final"] and not mine[0]["final"]
    # The API receiver got the same windows as the topic.
    posted = {
        (r["source"], r["coin"], r["window_start"], r["final"]) for r in job_env["receiver"].records
    }
    assert {("test", c, start, True) for c in ("alpha", "beta", "gamma", "delta")} <= posted


def test_malformed_and_late_records_are_dead_lettered_or_dropped(
    job_env: dict[str, Any], first_window: Finals
) -> None:
    s: Settings = job_env["settings"]
    bad = [
        (None, b"this is not json"),
        (None, b""),
        ("x", orjson.dumps({"coin": "x", "symbol": "x", "price": 1.0, "source": "t"})),
        ("y", tick("y", 110, -3.0)),
        ("z", tick("z", 110, 1.0).replace(iso(110).encode(), b"yesterday")),
        (
            "w",
            orjson.dumps(
                {"coin": "w", "symbol": "w", "price": "abc", "timestamp": iso(110), "source": "t"}
            ),
        ),
    ]
    late = [("alpha", tick("alpha", 5, 1000.0))]  # window [T0, T0+30) is closed
    fresh = [("epsilon", tick("epsilon", 140, 7.0))]
    send(s.kafka.bootstrap, s.kafka.topic_ticks, bad + late + fresh)
    letters = job_env["dlq"].until(lambda rs: len(rs) >= len(bad))
    reasons = sorted(r["reason"] for r in letters)
    assert reasons == sorted(
        [
            "not valid JSON or a field has the wrong type",
            "empty value",
            "missing field: timestamp",
            "price is not positive",
            "bad timestamp",
            "not valid JSON or a field has the wrong type",
        ]
    )
    assert b"this is not json" in {base64.b64decode(r["excerpt_b64"]) for r in letters}
    # The query kept running: the fresh tick's window is aggregated.
    job_env["windows"].until(lambda rs: any(r["coin"] == "epsilon" for r in rs))
    records = job_env["windows"].values
    start = iso(0).replace("Z", ".000Z")
    assert all(
        r["high"] < 1000
        for r in records
        if (r["source"], r["coin"], r["window_start"]) == ("test", "alpha", start)
    )
    wait_for(lambda: job_env["job"].late_dropped >= 1, 30, "the late tick to be counted")
    assert job_env["job"].dead_lettered >= len(bad)
    assert job_env["job"].stats.dead_letters_failed == 0


def test_the_ready_file_names_this_process(job_env: dict[str, Any]) -> None:
    import os

    ready = orjson.loads(job_env["ready_file"].read_bytes())
    assert ready["pid"] == os.getpid()
    assert 0 < time.time() - ready["started_at"] < 3600


def test_a_query_that_stops_by_itself_ends_the_job_with_an_error(job_env: dict[str, Any]) -> None:
    """Last in this module: it stops the query."""
    job: StreamJob = job_env["job"]
    [live] = [q for q in job.queries if q.name == LIVE]
    live.stop()  # ends without an exception
    with pytest.raises(QueryStopped, match="windows-live stopped without an error"):
        job.await_termination(threading.Event())
    # A requested stop is not an error, whatever state the queries are in.
    requested = threading.Event()
    requested.set()
    job.await_termination(requested)
