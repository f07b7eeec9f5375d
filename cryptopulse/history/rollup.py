"""Rolling windows up into candles, in plain Python: the definition the database's SQL must
match (a test compares both on random windows), and the choice of a default interval."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptopulse import classify
from cryptopulse.schema import INTERVAL_SECONDS, Candle, Interval, WindowAggregate, WindowKind

KIND_CODES: dict[WindowKind, int] = {"live": 0, "backfill": 1}
"""How a window's kind is stored: the smaller code wins a candle (any live window makes it live)."""
KINDS: dict[int, WindowKind] = {code: kind for kind, code in KIND_CODES.items()}


@dataclass(frozen=True, slots=True)
class WindowRow:
    """One stored window: its start in epoch seconds and the numbers a candle is made of."""

    start: int
    open: float
    high: float
    low: float
    close: float
    avg_price: float
    change: float | None
    volume: float | None
    cap: float | None
    ticks: int
    kind: int


def epoch(moment: datetime) -> int:
    """Whole epoch seconds (windows start on whole seconds; a fraction is dropped)."""
    return int(moment.timestamp() // 1)


def moment(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def row_of(window: WindowAggregate) -> WindowRow:
    return WindowRow(
        start=epoch(window.window_start),
        open=window.open,
        high=window.high,
        low=window.low,
        close=window.close,
        avg_price=window.avg_price,
        change=window.avg_change_24h,
        volume=window.max_volume_24h,
        cap=window.market_cap,
        ticks=window.tick_count,
        kind=KIND_CODES[window.kind],
    )


def bucket_of(start: int, interval: int) -> int:
    """The start of the epoch-aligned interval holding `start`."""
    return start - start % interval


@dataclass(frozen=True, slots=True)
class Totals:
    """A bucket's windows summed up; what the SQL query returns per candle, too."""

    bucket: int
    open: float
    close: float
    high: float
    low: float
    price_sum: float  # sum of avg_price x ticks
    ticks: int
    change_sum: float | None  # sum of change x ticks over windows with a change
    change_ticks: int | None
    volume: float | None
    cap: float | None
    windows: int
    kind: int


def candle(totals: Totals, interval: int) -> Candle:
    """The candle of one bucket's totals; labels from `classify` on the rolled-up change."""
    change = (
        totals.change_sum / totals.change_ticks
        if totals.change_sum is not None and totals.change_ticks
        else None
    )
    # model_construct: every number was validated when its window was admitted
    return Candle.model_construct(
        start=moment(totals.bucket),
        end=moment(totals.bucket + interval),
        open=totals.open,
        high=totals.high,
        low=totals.low,
        close=totals.close,
        avg_price=totals.price_sum / totals.ticks,
        avg_change_24h=change,
        max_volume_24h=totals.volume,
        market_cap=totals.cap,
        tick_count=totals.ticks,
        windows=totals.windows,
        volatility=classify.volatility(change),
        trend=classify.trend(change),
        kind=KINDS[totals.kind],
    )


def _totals(bucket: int, rows: list[WindowRow]) -> Totals:
    """`rows` sorted by start, all in one bucket."""
    changed = [r for r in rows if r.change is not None]
    caps = [r.cap for r in rows if r.cap is not None]
    volumes = [r.volume for r in rows if r.volume is not None]
    return Totals(
        bucket=bucket,
        open=rows[0].open,
        close=rows[-1].close,
        high=max(r.high for r in rows),
        low=min(r.low for r in rows),
        price_sum=sum(r.avg_price * r.ticks for r in rows),
        ticks=sum(r.ticks for r in rows),
        change_sum=sum(r.change * r.ticks for r in changed if r.change is not None)
        if changed
        else None,
        change_ticks=sum(r.ticks for r in changed) if changed else None,
        volume=max(volumes) if volumes else None,
        cap=caps[-1] if caps else None,
        windows=len(rows),
        kind=min(r.kind for r in rows),
    )


def rollup(rows: Iterable[WindowRow], interval: int) -> list[Candle]:
    """Candles of `interval` seconds, oldest first, from one series' windows (any order, one
    per start); buckets without a window give no candle."""
    buckets: dict[int, list[WindowRow]] = {}
    for row in sorted(rows, key=lambda r: r.start):
        buckets.setdefault(bucket_of(row.start, interval), []).append(row)
    return [candle(_totals(b, buckets[b]), interval) for b in sorted(buckets)]


def default_interval(span_seconds: float, max_points: int) -> Interval:
    """The shortest interval giving at most `max_points` candles over the span (else the
    longest there is)."""
    for name, seconds in INTERVAL_SECONDS.items():
        if span_seconds / seconds <= max_points:
            return name
    return "1d"


def interval_for_points(span_seconds: float, points: int) -> Interval:
    """The interval giving closest to `points` candles over the span (by ratio; a tie goes to
    the shorter interval)."""
    return min(
        INTERVAL_SECONDS,
        key=lambda n: abs(math.log(max(span_seconds / INTERVAL_SECONDS[n], 1e-9) / points)),
    )
