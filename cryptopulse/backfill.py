"""Past prices as `backfill` windows, so charts are full from the start (issue #13). Pure.

A source that can see its past (CoinGecko's `/coins/{id}/market_chart`, the simulator run over
the last 24 h) turns it into `Point`s; `to_windows` aggregates them into 30 s windows exactly as
the Spark job aggregates ticks (`stream/window.py`): aligned on `floor(t / window)`, open and
close by time, high and low, the mean price and 24 h change, the max 24 h volume, the latest
known market cap, the number of points, and the labels from `classify`. Each window is `final`
(nothing will change it) and `kind="backfill"`. Windows with no point stay missing: a gap in
the data is a gap in the chart, never a made-up price.

Windows that start at or after `until` are left out: the producer's live ticks cover those,
and a backfill window must never stand for a live one. A point that makes no sense (a price
that is not a finite positive number, a negative volume, a time out of range) is rejected and
counted by reason; the rest still count.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import orjson

from cryptopulse.classify import trend, volatility
from cryptopulse.schema import MAX_AMOUNT, WindowAggregate, iso_millis

DAY: Final = 86_400.0
MIN_TIME: Final = 946_684_800.0  # 2000-01-01: older "points" are garbage
MAX_TIME: Final = 32_503_680_000.0  # 3000-01-01
MAX_FIGURE: Final = MAX_AMOUNT  # USD: larger prices, volumes or caps are garbage
MAX_CHANGE: Final = 1e6  # percent


@dataclass(frozen=True, slots=True)
class Point:
    """One past observation of one coin: Unix seconds and USD figures (None when unknown)."""

    at: float
    price: float
    change_24h: float | None = None
    volume_24h: float | None = None
    market_cap: float | None = None


@dataclass
class Windows:
    """What `to_windows` made: the windows, oldest first, and the points it rejected by reason."""

    windows: list[WindowAggregate] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)

    @property
    def points(self) -> int:
        return sum(w.tick_count for w in self.windows)


def _finite(value: float | None) -> bool:
    return value is None or (isinstance(value, int | float) and math.isfinite(value))


def _in_range(value: float | None, low: float, high: float) -> bool:
    return value is None or low <= value <= high  # False for NaN


def point_problem(point: Point) -> str | None:
    """Why a point cannot be used, or None."""
    try:  # the fast path: comparisons are False for NaN, so anything odd takes the slow one
        if (
            MIN_TIME <= point.at < MAX_TIME
            and 0 < point.price <= MAX_FIGURE
            and _in_range(point.change_24h, -MAX_CHANGE, MAX_CHANGE)
            and _in_range(point.volume_24h, 0, MAX_FIGURE)
            and _in_range(point.market_cap, 0, MAX_FIGURE)
        ):
            return None
    except TypeError:  # not a number at all
        pass
    return _reason(point)


def _reason(point: Point) -> str:
    if not (isinstance(point.at, int | float) and MIN_TIME <= point.at < MAX_TIME):
        return "bad_time"
    if not (isinstance(point.price, int | float) and math.isfinite(point.price)):
        return "bad_price"
    if point.price <= 0:
        return "nonpositive_price"
    if not (_finite(point.change_24h) and _finite(point.volume_24h) and _finite(point.market_cap)):
        return "bad_figure"
    if (point.volume_24h or 0) < 0 or (point.market_cap or 0) < 0:
        return "negative_figure"
    if max(point.price, point.volume_24h or 0, point.market_cap or 0) > MAX_FIGURE:
        return "figure_too_large"
    return "change_too_large"


def window_start(at: float, window_seconds: float) -> float:
    """The start of the window holding `at`: like Spark's tumbling window, aligned on the epoch."""
    return math.floor(at / window_seconds) * window_seconds


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def aggregate(
    points: Sequence[Point],
    start: float,
    window_seconds: float,
    *,
    source: str,
    coin: str,
    symbol: str,
    quote: str | None = None,
) -> WindowAggregate:
    """One window from its points (time-ordered, at least one), as Spark aggregates ticks.
    Points are quotes, never trades: the trade fields stay null."""
    if len(points) == 1:  # the common case (one tick per window): no sums
        only = points[0]
        prices = [only.price]
        change, volume, cap = only.change_24h, only.volume_24h, only.market_cap
        average = low = high = only.price
    else:
        prices = [p.price for p in points]
        changes = [p.change_24h for p in points if p.change_24h is not None]
        volumes = [p.volume_24h for p in points if p.volume_24h is not None]
        caps = [p.market_cap for p in points if p.market_cap is not None]
        change = _mean(changes) if changes else None
        volume = max(volumes) if volumes else None
        cap = caps[-1] if caps else None
        low, high = min(prices), max(prices)
        # a mean of equal prices can differ from them in the last bit: kept within the range
        average = min(max(_mean(prices), low), high)
    return WindowAggregate(
        source=source,
        coin=coin,
        symbol=symbol,
        window_start=_utc(start),
        window_end=_utc(start + window_seconds),
        avg_price=average,
        open=prices[0],
        high=high,
        low=low,
        close=prices[-1],
        avg_change_24h=change,
        max_volume_24h=volume,
        market_cap=cap,
        tick_count=len(points),
        volatility=volatility(change),
        trend=trend(change),
        final=True,
        kind="backfill",
        quote=quote,
    )


def to_windows(
    points: Iterable[Point],
    *,
    source: str,
    coin: str,
    symbol: str,
    window_seconds: float,
    until: float | None = None,
    quote: str | None = None,
) -> Windows:
    """`points` (any order) as backfill windows, oldest first; only windows that start before
    `until`'s window (the first one live ticks fill) when given. `quote`: the currency the
    prices are in, when the source says (as its live ticks do)."""
    out = Windows()
    good: list[Point] = []
    for point in points:
        problem = point_problem(point)
        if problem is None:
            good.append(point)
        else:
            out.rejected[problem] += 1
    good.sort(key=lambda p: p.at)
    limit = window_start(until, window_seconds) if until is not None else math.inf

    def window(group: list[Point], start: float) -> WindowAggregate:
        return aggregate(
            group, start, window_seconds, source=source, coin=coin, symbol=symbol, quote=quote
        )

    group: list[Point] = []
    current = math.nan
    for point in good:
        start = window_start(point.at, window_seconds)
        if start >= limit:
            break
        if start != current and group:
            out.windows.append(window(group, current))
            group = []
        current = start
        group.append(point)
    if group:
        out.windows.append(window(group, current))
    return out


def with_day_change(points: Sequence[Point], tolerance: float) -> list[Point]:
    """Points whose 24 h change is unknown get it from the price 24 h earlier, when the series
    has a point within `tolerance` seconds of that time; otherwise it stays unknown.

    (CoinGecko's one-day chart starts 24 h ago, so only its newest points have such a partner;
    the others keep a null change, shown as unknown and labelled Stable, as Spark labels a
    window of ticks without a change.)"""
    ordered = sorted(points, key=lambda p: p.at)
    times = [p.at for p in ordered]
    out: list[Point] = []
    for point in ordered:
        if point.change_24h is not None:
            out.append(point)
            continue
        target = point.at - DAY
        i = bisect.bisect_left(times, target)
        near = [j for j in (i - 1, i) if 0 <= j < len(ordered)]
        best = min(near, key=lambda j: abs(times[j] - target), default=None)
        ref = ordered[best].price if best is not None else None
        if best is not None and abs(times[best] - target) <= tolerance and ref and ref > 0:
            change = (point.price / ref - 1) * 100
            point = Point(point.at, point.price, change, point.volume_24h, point.market_cap)
        out.append(point)
    return out


def encode_window(window: WindowAggregate) -> tuple[bytes, bytes]:
    """(key, value) of a window record on the windows topic, as the Spark job writes them:
    key = coin id, value = the aggregate's JSON in field order, timestamps with milliseconds."""
    record = dict(window.__dict__)  # the fields, in order (model_dump costs 3x as much)
    record["window_start"] = iso_millis(window.window_start)
    record["window_end"] = iso_millis(window.window_end)
    return window.coin.encode(), orjson.dumps(record)


__all__ = [
    "DAY",
    "Point",
    "Windows",
    "aggregate",
    "encode_window",
    "point_problem",
    "to_windows",
    "window_start",
    "with_day_change",
]
