"""A window's running aggregate, merged batch by batch in the driver, and its record.

Spark aggregates each micro-batch's ticks per (source, coin, window) into a partial
(`window.PartialWindows`, stateless: no state store); the live sink folds each partial into
the window's `WindowState` here and writes the window's record from it. The merge is what
Spark's own aggregation buffers did: sums add, extremes compare, and each "latest"/"earliest"
value travels with the ordering key that chose it, so merging batches in any grouping gives
the aggregate of all their ticks. Pure logic: tested without Spark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from operator import attrgetter
from typing import Any

import orjson
from pydantic import TypeAdapter

from cryptopulse.classify import trend, volatility
from cryptopulse.schema import iso_millis

# Added to a quote's event time (microseconds) in the open/close orderings, so any trade of
# the window comes before every quote: one min_by/max_by picks "the first trade, else the first
# tick". 2^61 µs is 73,000 years: far past any event time, and the sum stays within a long.
QUOTES_LAST = 2**61


@dataclass(slots=True)
class WindowState:
    """The mergeable aggregate of one window's ticks (Spark's aggregation buffers)."""

    end_ms: int
    symbol: str
    last_us: int  # latest event time (µs): picks the symbol, drives the watermark
    quote: str | None
    quote_us: int | None  # event time of the latest tick that named its quote
    market_cap: float | None
    cap_us: int | None  # event time of the latest tick with a market cap
    open: float
    open_key: int  # the open's ordering key: trades before quotes, then event time
    close: float
    close_key: int
    price_sum: float
    tick_count: int
    tick_high: float
    tick_low: float
    trade_high: float | None
    trade_low: float | None
    trade_price_sum: float | None
    notional: float | None
    traded_volume: float | None
    trades: int
    change_sum: float | None
    change_count: int
    max_volume_24h: float | None

    @classmethod
    def of(cls, values: Sequence[Any]) -> WindowState:
        """From trusted values in field order (Spark's partials)."""
        return cls(*values)

    @classmethod
    def checked(cls, values: Sequence[Any]) -> WindowState:
        """From values in field order read back from a file: each checked against its type,
        so a damaged file fails here, not in the middle of a batch."""
        if len(values) != len(STATE_FIELDS):
            raise ValueError(f"{len(values)} values, not {len(STATE_FIELDS)}")
        return _STATE_ADAPTER.validate_python(dict(zip(STATE_FIELDS, values, strict=True)))

    def values(self) -> tuple[Any, ...]:
        """The fields in order (`of` reads them back); not `astuple`, which deep-copies."""
        return _STATE_VALUES(self)

    def add(self, other: WindowState) -> None:
        """Fold another partial of the same window into this one (ties keep this one's)."""
        if other.last_us > self.last_us:
            self.symbol, self.last_us = other.symbol, other.last_us
        if other.quote_us is not None and (self.quote_us is None or other.quote_us > self.quote_us):
            self.quote, self.quote_us = other.quote, other.quote_us
        if other.cap_us is not None and (self.cap_us is None or other.cap_us > self.cap_us):
            self.market_cap, self.cap_us = other.market_cap, other.cap_us
        if other.open_key < self.open_key:
            self.open, self.open_key = other.open, other.open_key
        if other.close_key > self.close_key:
            self.close, self.close_key = other.close, other.close_key
        self.price_sum += other.price_sum
        self.tick_count += other.tick_count
        self.tick_high = max(self.tick_high, other.tick_high)
        self.tick_low = min(self.tick_low, other.tick_low)
        self.trade_high = _pick(max, self.trade_high, other.trade_high)
        self.trade_low = _pick(min, self.trade_low, other.trade_low)
        self.trade_price_sum = _sum(self.trade_price_sum, other.trade_price_sum)
        self.notional = _sum(self.notional, other.notional)
        self.traded_volume = _sum(self.traded_volume, other.traded_volume)
        self.trades += other.trades
        self.change_sum = _sum(self.change_sum, other.change_sum)
        self.change_count += other.change_count
        self.max_volume_24h = _pick(max, self.max_volume_24h, other.max_volume_24h)


STATE_FIELDS = tuple(f.name for f in fields(WindowState))
# One C call per window: the sink saves every open window each batch (5,000 and more).
_STATE_VALUES = attrgetter(*STATE_FIELDS)
_STATE_ADAPTER = TypeAdapter(WindowState)


def _sum(a: float | None, b: float | None) -> float | None:
    """SQL's sum: nulls are skipped, all-null is null."""
    if a is None:
        return b
    return a if b is None else a + b


def _pick(choose: Any, a: float | None, b: float | None) -> float | None:
    """SQL's max/min: nulls are skipped, all-null is null."""
    if a is None:
        return b
    return a if b is None else choose(a, b)


@lru_cache(maxsize=4096)
def bound_iso(epoch_ms: int) -> str:
    """A window bound (epoch ms) in the records' time format; few distinct ones, so cached."""
    whole = datetime.fromtimestamp(epoch_ms // 1000, UTC)
    return iso_millis(whole + timedelta(milliseconds=epoch_ms % 1000))


def window_record(
    source: str, coin: str, start_ms: int, state: WindowState, *, final: bool
) -> bytes:
    """The window's WindowAggregate record (JSON, the contract's field order)."""
    traded = state.trades > 0
    high = state.trade_high if state.trade_high is not None else state.tick_high
    low = state.trade_low if state.trade_low is not None else state.tick_low
    if traded and state.trade_price_sum is not None:
        avg_price = state.trade_price_sum / state.trades
    else:
        avg_price = state.price_sum / state.tick_count
    vwap = None
    if traded and state.notional is not None and state.traded_volume:
        # The mean of equal prices (and a weighted one) can leave the range in the last bit,
        # and a product of extreme values can underflow: kept within low..high.
        vwap = min(max(state.notional / state.traded_volume, low), high)
    change = (
        state.change_sum / state.change_count
        if state.change_sum is not None and state.change_count
        else None
    )
    return orjson.dumps(
        {
            "source": source,
            "coin": coin,
            "symbol": state.symbol,
            "window_start": bound_iso(start_ms),
            "window_end": bound_iso(state.end_ms),
            "avg_price": avg_price,
            "open": state.open,
            "high": high,
            "low": low,
            "close": state.close,
            "avg_change_24h": change,
            "max_volume_24h": state.max_volume_24h,
            "market_cap": state.market_cap,
            "tick_count": state.tick_count,
            "volatility": volatility(change),
            "trend": trend(change),
            "final": final,
            "kind": "live",
            "quote": state.quote,
            "vwap": vwap,
            "traded_volume": state.traded_volume if traded else None,
            "trade_count": state.trades if traded else None,
        }
    )
