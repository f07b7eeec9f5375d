"""Rolling windows up into candles, in plain Python: the definition the database's SQL must
match (a test compares both on random windows), and the choice of a default interval."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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
    # From trades; all None for a window without (see WindowAggregate).
    quote: str | None = None
    vwap: float | None = None
    traded: float | None = None
    trades: int | None = None


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
        quote=window.quote,
        vwap=window.vwap,
        traded=window.traded_volume,
        trades=window.trade_count,
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
    notional: float | None = None  # sum of vwap x traded over windows with trades
    traded: float | None = None
    trades: int | None = None


@dataclass(frozen=True, slots=True)
class CandleRow:
    """A `Candle` as plain data: built and serialized (orjson) many times faster than the
    pydantic model, for the API's hot path; `as_candle` validates it into the contract."""

    start: datetime
    end: datetime
    open: float
    high: float
    low: float
    close: float
    avg_price: float
    avg_change_24h: float | None
    max_volume_24h: float | None
    market_cap: float | None
    tick_count: int
    windows: int
    volatility: classify.Volatility
    trend: classify.Trend
    kind: WindowKind
    vwap: float | None = None
    traded_volume: float | None = None
    trade_count: int | None = None

    def as_candle(self) -> Candle:
        return Candle.model_validate({f: getattr(self, f) for f in self.__slots__})


def candle(totals: Totals, interval: int) -> CandleRow:
    """The candle of one bucket's totals; labels from `classify` on the rolled-up change."""
    change = (
        totals.change_sum / totals.change_ticks
        if totals.change_sum is not None and totals.change_ticks
        else None
    )
    return CandleRow(
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
        vwap=_vwap(totals),
        traded_volume=totals.traded,
        trade_count=totals.trades,
    )


def _vwap(totals: Totals) -> float | None:
    """The trades' VWAP: sum(vwap x traded) / sum(traded) over the windows with trades; kept
    within low..high (as each window's is: only the last bits of the sums can move it)."""
    if totals.notional is None or not totals.traded:
        return None
    return min(max(totals.notional / totals.traded, totals.low), totals.high)


def _sum_known(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _some(values: Iterable[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def merge(parts: Sequence[Totals], bucket: int) -> Totals:
    """Totals of consecutive parts (sorted by time) as one: hours into a 4 h or 1 d candle."""
    changes = [p for p in parts if p.change_sum is not None]
    volumes, caps = _some(p.volume for p in parts), _some(p.cap for p in parts)
    return Totals(
        bucket=bucket,
        open=parts[0].open,
        close=parts[-1].close,
        high=max(p.high for p in parts),
        low=min(p.low for p in parts),
        price_sum=sum(p.price_sum for p in parts),
        ticks=sum(p.ticks for p in parts),
        change_sum=sum(p.change_sum for p in changes if p.change_sum is not None)
        if changes
        else None,
        change_ticks=sum(p.change_ticks or 0 for p in changes) if changes else None,
        volume=max(volumes) if volumes else None,
        cap=caps[-1] if caps else None,
        windows=sum(p.windows for p in parts),
        kind=min(p.kind for p in parts),
        notional=_sum_known(p.notional for p in parts),
        traded=_sum_known(p.traded for p in parts),
        trades=_count_known(p.trades for p in parts),
    )


def _count_known(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def regroup(parts: Iterable[Totals], interval: int) -> list[Totals]:
    """Finer totals (sorted by bucket) merged into `interval`-second buckets."""
    groups: dict[int, list[Totals]] = {}
    for part in parts:
        groups.setdefault(bucket_of(part.bucket, interval), []).append(part)
    return [merge(groups[b], b) for b in sorted(groups)]


def _totals(bucket: int, rows: list[WindowRow]) -> Totals:
    """`rows` sorted by start, all in one bucket."""
    changed = [r for r in rows if r.change is not None]
    traded = [r for r in rows if r.traded is not None and r.vwap is not None]
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
        notional=sum(r.vwap * r.traded for r in traded if r.vwap and r.traded) if traded else None,
        traded=sum(r.traded for r in traded if r.traded) if traded else None,
        trades=sum(r.trades or 0 for r in traded) if traded else None,
    )


RowTuple = tuple[
    int,
    float,
    float,
    float,
    float,
    float,
    float | None,
    float | None,
    float | None,
    int,
    int,
    float | None,
    float | None,
    int | None,
]
"""A window as the database returns it: WindowRow's fields in order, without the quote."""


def stream_totals(rows: Iterable[RowTuple], interval: int) -> list[Totals]:
    """Bucket totals in one pass over rows sorted by start (the database's key order): the
    fast path of candles shorter than an hour. Equal to `rollup`'s (tested)."""
    out: list[Totals] = []
    cur: list[Any] | None = None
    for (
        start,
        o,
        high,
        low,
        close,
        price,
        change,
        volume,
        cap,
        ticks,
        kind,
        vwap,
        traded,
        n,
    ) in rows:
        bucket = start - start % interval
        if cur is None or bucket != cur[0]:
            if cur is not None:
                out.append(Totals(*cur))
            cur = [
                bucket,
                o,
                close,
                high,
                low,
                price * ticks,
                ticks,
                None,
                None,
                volume,
                cap,
                1,
                kind,
                None,
                None,
                None,
            ]
            if change is not None:
                cur[7], cur[8] = change * ticks, ticks
            if traded is not None and vwap is not None:  # all three or none (window_problem)
                cur[13], cur[14], cur[15] = vwap * traded, traded, n
            continue
        cur[2] = close
        cur[3] = max(cur[3], high)
        cur[4] = min(cur[4], low)
        cur[5] += price * ticks
        cur[6] += ticks
        if change is not None:
            cur[7] = change * ticks if cur[7] is None else cur[7] + change * ticks
            cur[8] = ticks if cur[8] is None else cur[8] + ticks
        if volume is not None and (cur[9] is None or volume > cur[9]):
            cur[9] = volume
        if cap is not None:
            cur[10] = cap
        cur[11] += 1
        cur[12] = min(cur[12], kind)
        if traded is not None and vwap is not None:
            if cur[14] is None:
                cur[13], cur[14], cur[15] = vwap * traded, traded, n
            else:
                cur[13] += vwap * traded
                cur[14] += traded
                cur[15] += n
    if cur is not None:
        out.append(Totals(*cur))
    return out


def rollup(rows: Iterable[WindowRow], interval: int) -> list[CandleRow]:
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
