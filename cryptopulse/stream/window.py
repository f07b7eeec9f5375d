"""Event-time tumbling windows per source and coin, with a watermark for late ticks."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

MERGE_COLUMNS = ("first_event_time", "last_event_time", "change_ticks", "cap_event_time")
"""Columns beyond the contract that the sink needs to merge one window's rows (see below)."""


def aggregate_windows(
    ticks: DataFrame, window_seconds: float, watermark_seconds: float
) -> DataFrame:
    """Per source, coin and window: average, OHLC, averages of 24 h figures, latest market cap,
    count. Two sources never share a window, even for the same coin.

    Open/close and the market cap follow event time (`min_by` / `max_by`), not arrival order.

    The symbol is a grouping key, not an aggregate: a string in the aggregation buffer
    (`max_by(symbol, …)`) makes Spark sort every batch (SortAggregate) instead of hashing.
    So a coin whose symbol changes within a window gives one row per symbol, and the sink
    merges them (`finals.merge_parts`) with the columns kept for that and not part of the
    contract: `first_event_time`, `last_event_time` (which also lets the sink follow the
    watermark), `change_ticks` (ticks with a 24 h change) and `cap_event_time`.
    """
    length = f"{int(window_seconds * 1000)} milliseconds"
    when = F.col("event_time")
    return (
        ticks.withWatermark("event_time", f"{int(watermark_seconds * 1000)} milliseconds")
        .groupBy(
            F.col("source"), F.col("coin"), F.col("symbol"), F.window(when, length).alias("window")
        )
        .agg(
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
            F.min(when).alias("first_event_time"),
            F.max(when).alias("last_event_time"),
            F.count("change_24h").alias("change_ticks"),
            F.max(F.when(F.col("market_cap").isNotNull(), when)).alias("cap_event_time"),
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
            *MERGE_COLUMNS,
        )
    )
