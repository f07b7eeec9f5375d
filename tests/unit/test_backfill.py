"""Past points -> backfill windows (`cryptopulse.backfill`): exact, aligned like Spark's, gaps kept,
bad points rejected and counted, encoded as the Spark job writes window records."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import pytest

from cryptopulse.backfill import (
    DAY,
    Point,
    encode_window,
    point_problem,
    to_windows,
    window_start,
    with_day_change,
)
from cryptopulse.classify import trend, volatility
from cryptopulse.schema import WindowAggregate

T0 = datetime(2026, 11, 24, 22, 0, tzinfo=UTC).timestamp()  # a window boundary


@dataclass
class Collected:
    """A `BackfillSink` that keeps what a source hands it (the producer's `BackfillPublisher`
    is tested against Kafka in tests/integration/test_backfill.py)."""

    windows: dict[str, list[WindowAggregate]] = field(default_factory=dict)
    failures: list[tuple[str, str, float | None]] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)

    def publish(self, coin: str, windows: Sequence[WindowAggregate]) -> int:
        assert coin not in self.windows, "a coin is backfilled once"
        self.windows[coin] = list(windows)
        return len(windows)

    def failed(self, coin: str, reason: str, retry_in: float | None) -> None:
        self.failures.append((coin, reason, retry_in))

    def round_done(self, coins: int, seconds: float) -> None:
        self.rounds.append(coins)


def convert(
    points: list[Point], until: float | None = None, window: float = 30.0
) -> list[WindowAggregate]:
    made = to_windows(
        points, source="coingecko", coin="bitcoin", symbol="btc", window_seconds=window, until=until
    )
    assert not made.rejected
    return made.windows


def test_windows_are_aligned_on_the_epoch_like_spark() -> None:
    assert window_start(T0 + 29.999, 30) == T0
    assert window_start(T0 + 30, 30) == T0 + 30
    assert window_start(T0 - 0.001, 30) == T0 - 30
    assert window_start(T0 + 7, 5) == T0 + 5


def test_one_window_is_aggregated_exactly() -> None:
    points = [  # out of order on purpose: open and close follow time
        Point(T0 + 20, 103.0, 2.0, 50.0, 1000.0),
        Point(T0 + 1, 100.0, 4.0, 70.0, 900.0),
        Point(T0 + 10, 101.0, None, None, None),
        Point(T0 + 25, 99.0, 3.0, 60.0, None),
    ]
    (w,) = convert(points)
    assert w.window_start == datetime.fromtimestamp(T0, UTC)
    assert (w.window_end - w.window_start).total_seconds() == 30
    assert (w.open, w.high, w.low, w.close) == (100.0, 103.0, 99.0, 99.0)
    assert w.avg_price == pytest.approx((103 + 100 + 101 + 99) / 4, rel=1e-15)
    assert w.avg_change_24h == pytest.approx(3.0)  # the mean of the known changes
    assert w.max_volume_24h == 70.0
    assert w.market_cap == 1000.0  # the latest known, as Spark keeps it
    assert w.tick_count == 4
    assert (w.volatility, w.trend) == (volatility(3.0), trend(3.0)) == ("Moving", "📈 Rising")
    assert w.final is True and w.kind == "backfill"
    assert (w.source, w.coin, w.symbol) == ("coingecko", "bitcoin", "btc")


def test_gaps_stay_gaps_and_windows_are_oldest_first() -> None:
    points = [Point(T0 + 300 * i + 12, 100.0 + i) for i in range(4)]  # 5-minute points
    windows = convert(points)
    starts = [w.window_start.timestamp() - T0 for w in windows]
    assert starts == [0, 300, 600, 900]  # nine empty windows between each: none made up
    assert [w.close for w in windows] == [100.0, 101.0, 102.0, 103.0]
    assert all(w.tick_count == 1 for w in windows)
    assert all(w.avg_change_24h is None and w.trend == "➡️ Stable" for w in windows)


def test_windows_from_the_live_start_on_are_left_to_live_ticks() -> None:
    points = [Point(T0 + 10 * i, 100.0) for i in range(12)]  # T0 .. T0+110
    windows = convert(points, until=T0 + 65)  # live from the window at T0+60
    assert [w.window_start.timestamp() - T0 for w in windows] == [0, 30]
    assert convert(points, until=T0 + 60)[-1].window_start.timestamp() == T0 + 30
    assert convert(points, until=T0) == []


@pytest.mark.parametrize(
    ("point", "reason"),
    [
        (Point(T0, 0.0), "nonpositive_price"),
        (Point(T0, -1.0), "nonpositive_price"),
        (Point(T0, math.nan), "bad_price"),
        (Point(T0, math.inf), "bad_price"),
        (Point(math.nan, 1.0), "bad_time"),
        (Point(5.0, 1.0), "bad_time"),  # 1970: a seconds/milliseconds mix-up
        (Point(T0 * 1000, 1.0), "bad_time"),
        (Point(T0, 1.0, math.inf), "bad_figure"),
        (Point(T0, 1.0, None, -5.0), "negative_figure"),
        (Point(T0, 1.0, None, None, -1.0), "negative_figure"),
        (Point(T0, 1e300), "figure_too_large"),
        (Point(T0, 1.0, 1e9), "change_too_large"),
        (Point(T0, "1.0"), "bad_price"),  # type: ignore[arg-type]
        (Point(T0, 1.0, None, "5"), "bad_figure"),  # type: ignore[arg-type]
    ],
)
def test_bad_points_are_rejected_with_a_reason(point: Point, reason: str) -> None:
    assert point_problem(point) == reason
    made = to_windows(
        [point, Point(T0 + 40, 5.0)],
        source="simulated",
        coin="x",
        symbol="x",
        window_seconds=30,
    )
    assert made.rejected == {reason: 1}
    assert [w.close for w in made.windows] == [5.0]  # the good point still counts


def test_every_window_passes_the_contract() -> None:
    points = [Point(T0 + 7 * i, 0.1 + (i % 3) * 1e-9, 1.0, 2.0, 3.0) for i in range(500)]
    made = to_windows(points, source="simulated", coin="c", symbol="c", window_seconds=30)
    assert made.points == 500
    for w in made.windows:
        assert WindowAggregate.model_validate(w.model_dump()) == w


def test_day_change_from_the_price_24h_earlier_when_the_series_has_it() -> None:
    points = [Point(T0, 100.0), Point(T0 + 300, 110.0), Point(T0 + DAY + 60, 120.0)]
    out = with_day_change(points, tolerance=150)
    assert [p.change_24h for p in out[:2]] == [None, None]  # nothing 24 h before them
    assert out[2].change_24h == pytest.approx(20.0)  # vs 100 (60 s off, within 150)
    far = with_day_change([Point(T0, 100.0), Point(T0 + DAY + 200, 120.0)], tolerance=150)
    assert far[1].change_24h is None
    given = with_day_change([Point(T0, 100.0), Point(T0 + DAY, 120.0, -3.0)], tolerance=150)
    assert given[1].change_24h == -3.0  # a source's own figure wins


def test_records_are_keyed_and_encoded_like_the_spark_jobs() -> None:
    (w,) = convert([Point(T0 + 3, 97012.5, -1.84, 3.1e10, 1.92e12)])
    key, value = encode_window(w)
    assert key == b"bitcoin"
    record = orjson.loads(value)
    assert list(record) == list(WindowAggregate.model_fields)  # Spark's to_json(struct(...))
    assert record["window_start"] == "2026-11-24T22:00:00.000Z"  # ISO_MILLIS, UTC
    assert record["window_end"] == "2026-11-24T22:00:30.000Z"
    assert record["kind"] == "backfill" and record["final"] is True
    assert WindowAggregate.model_validate_json(value) == w
    # Points are quotes, never trades: no trade figures; the quote currency when told.
    assert (record["vwap"], record["traded_volume"], record["trade_count"]) == (None, None, None)
    assert record["quote"] is None
    (usd,) = to_windows(
        [Point(T0 + 3, 97012.5)],
        source="coingecko",
        coin="bitcoin",
        symbol="btc",
        window_seconds=30,
        quote="USD",
    ).windows
    assert orjson.loads(encode_window(usd)[1])["quote"] == "USD"
