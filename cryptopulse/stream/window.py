"""Event-time tumbling windows per source and coin, with a watermark for late ticks."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

# Added to a quote's event time (microseconds) in the open/close orderings, so any trade of
# the window comes before every quote: one min_by/max_by picks "the first trade, else the first
# tick". 2^61 µs is 73,000 years: far past any event time, and the sum stays within a long.
_QUOTES_LAST = 2**61


def _trades_first(is_trade: Column, micros: Column, *, earliest: bool) -> Column:
    """An ordering key under which every trade ranks before every quote, by event time."""
    penalty = F.when(is_trade, F.lit(0)).otherwise(F.lit(_QUOTES_LAST))
    return micros + penalty if earliest else micros - penalty


def aggregate_windows(
    ticks: DataFrame, window_seconds: float, watermark_seconds: float
) -> DataFrame:
    """Per source, coin and window: average, OHLC, averages of 24 h figures, latest market cap,
    count. Two sources never share a window, even for the same coin.

    Open/close and the market cap follow event time (`min_by` / `max_by`), not arrival order.
    A window with trades (ticks with a `size`) takes its open/high/low/close/average from the
    trades only, and has their VWAP, summed size and count; without trades those three are
    null and the prices come from every tick. The 24 h figures and the market cap come from
    every tick either way (a ticker's). `quote` is the latest tick's that has one.
    `last_event_time` (not part of the contract) lets the sink follow the watermark.
    """
    length = f"{int(window_seconds * 1000)} milliseconds"
    when = F.col("event_time")
    price, size = F.col("price"), F.col("size")
    is_trade = size.isNotNull()
    micros = F.unix_micros(when)
    trade_price = F.when(is_trade, price)
    return (
        ticks.withWatermark("event_time", f"{int(watermark_seconds * 1000)} milliseconds")
        .groupBy(F.col("source"), F.col("coin"), F.window(when, length).alias("window"))
        .agg(
            F.max_by("symbol", when).alias("symbol"),
            # max_by skips nulls of the ordering column only; keep the latest known quote.
            F.max_by("quote", F.when(F.col("quote").isNotNull(), when)).alias("quote"),
            F.sum(price).alias("price_sum"),
            F.min_by(price, _trades_first(is_trade, micros, earliest=True)).alias("open"),
            F.max_by(price, _trades_first(is_trade, micros, earliest=False)).alias("close"),
            F.max(price).alias("tick_high"),
            F.min(price).alias("tick_low"),
            F.max(trade_price).alias("trade_high"),
            F.min(trade_price).alias("trade_low"),
            F.sum(trade_price).alias("trade_price_sum"),
            F.sum(price * size).alias("notional"),
            F.sum(size).alias("traded_volume"),
            F.count(size).alias("trades"),
            F.avg("change_24h").alias("avg_change_24h"),
            F.max("volume_24h").alias("max_volume_24h"),
            F.max_by("market_cap", F.when(F.col("market_cap").isNotNull(), when)).alias(
                "market_cap"
            ),
            F.count(F.lit(1)).alias("tick_count"),
            F.max(when).alias("last_event_time"),
        )
        .select(*_window_columns())
    )


def _window_columns() -> list[Column | str]:
    """The aggregate's buffers as the window's fields: the trades' prices when it had any."""
    col = F.col
    traded = col("trades") > 0
    high = F.coalesce(col("trade_high"), col("tick_high"))
    low = F.coalesce(col("trade_low"), col("tick_low"))
    # The mean of equal prices (and a weighted one) can leave the range in the last bit, and a
    # product of extreme values can underflow or overflow: both kept within low..high.
    vwap = F.least(F.greatest(col("notional") / col("traded_volume"), low), high)
    return [
        "source",
        "coin",
        "symbol",
        col("window.start").alias("window_start"),
        col("window.end").alias("window_end"),
        F.when(traded, col("trade_price_sum") / col("trades"))
        .otherwise(col("price_sum") / col("tick_count"))
        .alias("avg_price"),
        "open",
        high.alias("high"),
        low.alias("low"),
        "close",
        "avg_change_24h",
        "max_volume_24h",
        "market_cap",
        "tick_count",
        "quote",
        F.when(traded, vwap).alias("vwap"),
        "traded_volume",
        F.when(traded, col("trades")).alias("trade_count"),
        "last_event_time",
    ]
