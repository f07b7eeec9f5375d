"""Event-time tumbling windows per source and coin: each micro-batch's partial aggregates."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cryptopulse.stream.merge import QUOTES_LAST


def _trades_first(is_trade: Column, micros: Column, *, earliest: bool) -> Column:
    """An ordering key under which every trade ranks before every quote, by event time."""
    penalty = F.when(is_trade, F.lit(0)).otherwise(F.lit(QUOTES_LAST))
    return micros + penalty if earliest else micros - penalty


@dataclass(frozen=True)
class PartialWindows:
    """One micro-batch's ticks per source, coin and window, as mergeable partials (stateless:
    the driver folds each batch's partials into its open windows, see merge.py, finals.py).

    A row holds the key (source, coin, start_ms), the symbol and the quote, then the
    aggregates named as merge.WindowState's fields; a window may have more than one row.
    The columns are built once and applied to every batch: a column is an unresolved
    expression, and building these costs py4j calls, about 60 ms per batch (measured) on the
    path of every batch.

    Open/close, the symbol, the quote and the market cap follow event time, not arrival order,
    and each comes with the ordering key that chose it so batches merge alike. A trade (a tick
    with a `size`) ranks before every quote for open/close, and its prices have their own
    extremes and sums: a window with trades takes its prices from the trades only.
    """

    length_ms: int
    keys: tuple[Column, ...]
    aggregates: tuple[Column, ...]

    @classmethod
    def of(cls, window_seconds: float) -> PartialWindows:
        length_ms = round(window_seconds * 1000)
        price, size = F.col("price"), F.col("size")
        is_trade = size.isNotNull()
        micros = F.unix_micros(F.col("event_time"))
        # The tumbling window's start as Spark's window() computes it (a non-negative
        # remainder, so times before 1970 too), without its struct and bounds filter.
        start_ms = ((micros - F.pmod(micros, F.lit(length_ms * 1000))) / F.lit(1000)).cast("long")
        trade_price = F.when(is_trade, price)
        open_key = _trades_first(is_trade, micros, earliest=True)
        close_key = _trades_first(is_trade, micros, earliest=False)
        quote_us = F.when(F.col("quote").isNotNull(), micros)
        cap_us = F.when(F.col("market_cap").isNotNull(), micros)
        change = F.col("change_24h")
        # The symbol and the quote are grouped by rather than kept by max_by: strings in the
        # aggregation buffer make Spark sort instead of hash (measured ~2x slower). A series
        # rarely changes either within a batch; when it does, the driver merges the rows.
        keys = (
            F.col("source"),
            F.col("coin"),
            start_ms.alias("start_ms"),
            F.col("symbol"),
            F.col("quote"),
        )
        aggregates = (
            F.max(micros).alias("last_us"),
            F.max(quote_us).alias("quote_us"),
            F.max_by("market_cap", cap_us).alias("market_cap"),
            F.max(cap_us).alias("cap_us"),
            F.min_by(price, open_key).alias("open"),
            F.min(open_key).alias("open_key"),
            F.max_by(price, close_key).alias("close"),
            F.max(close_key).alias("close_key"),
            F.sum(price).alias("price_sum"),
            F.count(F.lit(1)).alias("tick_count"),
            F.max(price).alias("tick_high"),
            F.min(price).alias("tick_low"),
            F.max(trade_price).alias("trade_high"),
            F.min(trade_price).alias("trade_low"),
            F.sum(trade_price).alias("trade_price_sum"),
            F.sum(price * size).alias("notional"),
            F.sum(size).alias("traded_volume"),
            F.count(size).alias("trades"),
            F.sum(change).alias("change_sum"),
            F.count(change).alias("change_count"),
            F.max("volume_24h").alias("max_volume_24h"),
        )
        return cls(length_ms, keys, aggregates)

    def __call__(self, ticks: DataFrame) -> DataFrame:
        return ticks.groupBy(*self.keys).agg(*self.aggregates)
