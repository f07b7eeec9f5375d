"""Event-time tumbling windows per source and coin, with a watermark for late ticks."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def aggregate_windows(
    ticks: DataFrame, window_seconds: float, watermark_seconds: float
) -> DataFrame:
    """Per source, coin and window: average, OHLC, averages of 24 h figures, latest market cap,
    count. Two sources never share a window, even for the same coin.

    Open/close and the market cap follow event time (`min_by` / `max_by`), not arrival order.
    `last_event_time` (not part of the contract) lets the sink follow the watermark.
    """
    length = f"{int(window_seconds * 1000)} milliseconds"
    when = F.col("event_time")
    return (
        ticks.withWatermark("event_time", f"{int(watermark_seconds * 1000)} milliseconds")
        .groupBy(F.col("source"), F.col("coin"), F.window(when, length).alias("window"))
        .agg(
            F.max_by("symbol", when).alias("symbol"),
            F.avg("price").alias("avg_price"),
            F.min_by("price", when).alias("open"),
            F.max("price").alias("high"),
            F.min("price").alias("low"),
            F.max_by("price", when).alias("close"),
            F.avg("change_24h").alias("avg_change_24h"),
            F.max("volume_24h").alias("max_volume_24h"),
            # max_by skips nulls of the ordering column only; keep the latest known cap.
            F.max_by("market_cap", F.when(F.col("market_cap").isNotNull(), when)).alias(
                "market_cap"
            ),
            F.count(F.lit(1)).alias("tick_count"),
            F.max(when).alias("last_event_time"),
        )
        .select(
            "source",
            "coin",
            "symbol",
            F.col("window.start").alias("window_start"),
            F.col("window.end").alias("window_end"),
            "avg_price",
            "open",
            "high",
            "low",
            "close",
            "avg_change_24h",
            "max_volume_24h",
            "market_cap",
            "tick_count",
            "last_event_time",
        )
    )
