"""Which windows make sense (schema.window_problem) and which a server admits (admission.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from cryptopulse.api.admission import Admission, reason_of, window_length
from cryptopulse.api.feed import MarketFeed
from cryptopulse.api.hub import Hub
from cryptopulse.api.kafka_feed import KafkaFeed
from cryptopulse.api.metrics import ApiMetrics
from cryptopulse.api.store import MarketStore
from cryptopulse.config import ApiSettings, Settings, SparkSettings
from cryptopulse.schema import (
    DEFER_CONSISTENCY,
    IngestRequest,
    WindowAggregate,
    window_problem,
)
from tests.factories import T0, WINDOW, window

NOW = T0 + timedelta(hours=1)
ADMISSION = Admission(window=WINDOW, max_future=timedelta(seconds=300))


def changed(**changes: Any) -> dict[str, Any]:
    record = window().model_dump()
    record.update(changes)
    return record


INCONSISTENT = [
    ("end before start", {"window_end": T0 - WINDOW}, "window_order"),
    ("end equals start", {"window_end": T0}, "window_order"),
    ("low above high", {"low": 101.0, "high": 99.0}, "price_range"),
    ("open above high", {"open": 100.5}, "price_range"),
    ("close below low", {"close": 99.5}, "price_range"),
    ("avg above high", {"avg_price": 100.001}, "price_range"),
    ("avg below low", {"avg_price": 99.999}, "price_range"),
]


@pytest.mark.parametrize(("changes", "reason"), [(c, r) for _, c, r in INCONSISTENT],
                         ids=[case for case, _, _ in INCONSISTENT])  # fmt: skip
def test_a_window_that_makes_no_sense_is_invalid(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        WindowAggregate.model_validate(changed(**changes))
    assert caught.value.errors()[0]["type"] == reason
    assert reason_of(caught.value) == reason
    # POST /ingest defers the check, to reject such records one by one
    deferred = WindowAggregate.model_validate(changed(**changes), context={DEFER_CONSISTENCY: True})
    problem = window_problem(deferred)
    assert problem is not None and problem[0] == reason
    assert ADMISSION.problem(deferred, NOW) == reason


def test_a_consistent_window_passes_and_the_factory_makes_one() -> None:
    assert window_problem(window()) is None
    wide = WindowAggregate.model_validate(
        changed(open=99.0, close=101.0, low=98.0, high=102.0, avg_price=100.5)
    )
    assert window_problem(wide) is None
    assert ADMISSION.problem(wide, NOW) is None


def test_spark_averages_may_differ_from_equal_prices_in_the_last_bit() -> None:
    avg = (0.1 + 0.1 + 0.1) / 3
    assert avg > 0.1  # what Spark's avg of three 0.1 gives
    record = changed(avg_price=avg, open=0.1, close=0.1, high=0.1, low=0.1)
    assert window_problem(WindowAggregate.model_validate(record)) is None
    below = changed(avg_price=0.1 * (1 - 1e-12), open=0.1, close=0.1, high=0.1, low=0.1)
    assert window_problem(WindowAggregate.model_validate(below)) is None
    # open and close are prices the job saw: compared exactly
    with pytest.raises(ValidationError):
        WindowAggregate.model_validate(changed(open=avg, close=0.1, high=0.1, low=0.1))


def test_the_deferred_check_applies_through_a_whole_batch() -> None:
    body = {"data": [changed(low=200.0), window().model_dump()]}
    with pytest.raises(ValidationError) as caught:
        IngestRequest.model_validate(body)
    assert [e["loc"] for e in caught.value.errors()] == [("data", 0)]
    batch = IngestRequest.model_validate(body, context={DEFER_CONSISTENCY: True})
    verdict = ADMISSION.split(batch.data, NOW)
    assert verdict.accepted == [window()] and verdict.reasons == {"price_range": 1}


def test_the_length_must_be_the_configured_window() -> None:
    short = WindowAggregate.model_validate(changed(window_end=T0 + timedelta(seconds=10)))
    assert ADMISSION.problem(short, NOW) == "window_length"
    five = Admission(window=window_length(5), max_future=timedelta(0))
    assert five.problem(window(), NOW) == "window_length"
    assert five.problem(short, NOW) == "window_length"
    ok = WindowAggregate.model_validate(changed(window_end=T0 + timedelta(seconds=5)))
    assert five.problem(ok, NOW) is None


def test_window_length_truncates_to_milliseconds_like_the_stream_job() -> None:
    assert window_length(30) == timedelta(seconds=30)
    assert window_length(0.5) == timedelta(milliseconds=500)
    assert window_length(1 / 3) == timedelta(milliseconds=333)


def test_a_window_too_far_in_the_future_is_refused() -> None:
    def starting(at: datetime) -> WindowAggregate:
        return window(start=at)

    assert ADMISSION.problem(starting(NOW + timedelta(seconds=300)), NOW) is None
    assert ADMISSION.problem(starting(NOW + timedelta(seconds=301)), NOW) == "future"
    year_9999 = datetime(9999, 12, 31, 23, 0, tzinfo=UTC)
    assert ADMISSION.problem(starting(year_9999), NOW) == "future"
    assert ADMISSION.problem(starting(NOW - timedelta(days=365)), NOW) is None


def test_split_keeps_the_good_records_in_order_and_counts_the_bad_by_reason() -> None:
    good = [window("bitcoin", i) for i in range(3)]
    future = window("bitcoin", start=NOW + timedelta(days=1))
    short = WindowAggregate.model_validate(changed(window_end=T0 + timedelta(seconds=1)))
    verdict = ADMISSION.split([good[0], future, good[1], short, future, good[2]], NOW)
    assert verdict.accepted == good
    assert verdict.reasons == {"future": 2, "window_length": 1}
    assert verdict.rejected == 3
    assert ADMISSION.split([], NOW).rejected == 0


def test_admission_from_settings() -> None:
    settings = Settings(
        spark=SparkSettings(window_seconds=5), api=ApiSettings(max_future_seconds=60)
    )
    admission = Admission.from_settings(settings)
    assert admission == Admission(window=timedelta(seconds=5), max_future=timedelta(seconds=60))
    assert Settings().api.max_future_seconds == 300


def test_reason_of_a_schema_error_is_invalid() -> None:
    with pytest.raises(ValidationError) as caught:
        WindowAggregate.model_validate(changed(avg_price="lots"))
    assert reason_of(caught.value) == "invalid"


def test_the_feed_stores_what_is_admitted_and_counts_the_rest() -> None:
    async def main() -> None:
        metrics = ApiMetrics()
        hub = Hub(metrics=metrics)
        feed = MarketFeed(MarketStore(10), hub, metrics, snapshot_history=5, admission=ADMISSION)
        await hub.start()
        future = window(start=datetime(9999, 1, 1, tzinfo=UTC))
        verdict = feed.admit([future, window(i=0), window(i=1)], "http", NOW)
        assert verdict.accepted == [window(i=0), window(i=1)] and verdict.reasons == {"future": 1}
        assert feed.store.history("simulated", "bitcoin") == [window(i=0), window(i=1)]
        none = feed.admit([future], "http", NOW)
        assert none.accepted == [] and none.rejected == 1
        await hub.stop()
        sample = metrics.registry.get_sample_value
        labels = {"origin": "http", "reason": "future"}
        assert sample("cryptopulse_api_rejected_records_total", labels) == 2
        assert sample("cryptopulse_api_records_total", {"origin": "http"}) == 2
        assert sample("cryptopulse_api_ingests_total", {"origin": "http"}) == 1

    asyncio.run(main())


class _Message:
    """The part of a confluent_kafka.Message that KafkaFeed reads."""

    def __init__(self, topic: str, value: bytes) -> None:
        self._topic, self._value = topic, value

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def value(self) -> bytes:
        return self._value


def test_windows_from_kafka_get_the_same_admission_counted_as_invalid() -> None:
    metrics = ApiMetrics()
    delivered: list[list[WindowAggregate]] = []
    feed = KafkaFeed(
        bootstrap="127.0.0.1:1",
        topic="windows",
        on_records=lambda records, _origin: delivered.append(records),
        metrics=metrics,
        admission=Admission(window=WINDOW, max_future=timedelta(seconds=300)),
    )
    loop = asyncio.new_event_loop()
    try:
        feed._loop = loop
        inconsistent = changed(low=200.0, high=300.0)
        inconsistent.update(window_start=T0.isoformat(), window_end=(T0 + WINDOW).isoformat())
        records = [
            window(i=0).model_dump_json().encode(),
            window(start=datetime(9999, 1, 1, tzinfo=UTC)).model_dump_json().encode(),
            WindowAggregate.model_construct(**changed(window_end=T0 + timedelta(seconds=1)))
            .model_dump_json()
            .encode(),
            orjson.dumps(inconsistent),
            b'{"coin": "x"}',
            window(i=1).model_dump_json().encode(),
        ]
        feed._deliver([_Message("windows", value) for value in records])  # type: ignore[misc]
        loop.call_soon(loop.stop)
        loop.run_forever()
    finally:
        loop.close()
    assert delivered == [[window(i=0), window(i=1)]]
    sample = metrics.registry.get_sample_value
    assert sample("cryptopulse_api_kafka_messages_total", {"outcome": "valid"}) == 2
    assert sample("cryptopulse_api_kafka_messages_total", {"outcome": "invalid"}) == 4
    for reason in ("future", "window_length", "price_range", "invalid"):
        labels = {"origin": "kafka", "reason": reason}
        assert sample("cryptopulse_api_rejected_records_total", labels) == 1, reason


def test_decoding_splits_windows_statuses_and_what_is_malformed() -> None:
    from cryptopulse.api.kafka_records import decode
    from tests.factories import status

    records = [
        _Message("windows", window(i=0).model_dump_json().encode()),
        _Message("status", status("coingecko", "live").model_dump_json().encode()),
        _Message("status", b"not json"),
        _Message("windows", b'{"coin": "x"}'),
    ]
    batch = decode(records, "windows", ADMISSION, NOW)
    assert batch.windows == [window(i=0)] and [s.source for s in batch.statuses] == ["coingecko"]
    assert (batch.valid, batch.invalid, batch.not_admitted) == (2, 2, 0)
    assert batch.refused == {"invalid": 1}  # only the windows topic's records are refusals
    assert [topic for topic, _ in batch.problems] == ["status", "windows"]
