"""Event-time tumbling windows per source and coin: each micro-batch's partial aggregates."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cryptopulse.stream.merge import QUOTES_LAST, STATE_FIELDS


def _trades_first(is_trade: Column, micros: Column, *, earliest: bool) -> Column:
    """An ordering key under which every trade ranks before every quote, by event time."""
    penalty = F.when(is_trade, F.lit(0)).otherwise(F.lit(QUOTES_LAST))
    return micros + penalty if earliest else micros - penalty


def partial_windows(ticks: DataFrame, window_seconds: float) -> DataFrame:
    """One micro-batch's ticks per source, coin and window, as mergeable partials: the key
    (source, coin, start_ms) then merge.WindowState's fields in order; a window may have more
    than one row. Stateless: the driver folds each batch's partials into its open windows
    (merge.py, finals.py).

    Open/close, the symbol, the quote and the market cap follow event time, not arrival order,
    and each comes with the ordering key that chose it so batches merge alike. A trade (a tick
    with a `size`) ranks before every quote for open/close, and its prices have their own
    extremes and sums: a window with trades takes its prices from the trades only.
    """
    length = f"{int(window_seconds * 1000)} milliseconds"
    when = F.col("event_time")
    price, size = F.col("price"), F.col("size")
    is_trade = size.isNotNull()
    micros = F.unix_micros(when)
    trade_price = F.when(is_trade, price)
    open_key = _trades_first(is_trade, micros, earliest=True)
    close_key = _trades_first(is_trade, micros, earliest=False)
    quote_us = F.when(F.col("quote").isNotNull(), micros)
    cap_us = F.when(F.col("market_cap").isNotNull(), micros)
    change = F.col("change_24h")
    return (
        # The symbol and the quote are grouped by rather than kept by max_by: strings in the
        # aggregation buffer make Spark sort instead of hash (measured ~2x slower). A series
        # rarely changes either within a batch; when it does, the driver merges the rows.
        ticks.groupBy(
            F.col("source"),
            F.col("coin"),
            F.window(when, length).alias("window"),
            F.col("symbol"),
            F.col("quote"),
        )
        .agg(
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
        .select(
            "source",
            "coin",
            F.unix_millis(F.col("window.start")).alias("start_ms"),
            F.unix_millis(F.col("window.end")).alias("end_ms"),
            *STATE_FIELDS[1:],
        )
    )
