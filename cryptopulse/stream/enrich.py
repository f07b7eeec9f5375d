"""Volatility and trend as Spark expressions, built from cryptopulse.classify's tables."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cryptopulse.classify import TREND_DOWN, TREND_FLAT, TREND_UP, VOLATILITY_BANDS
from cryptopulse.schema import WindowAggregate


def volatility_expr(change: Column) -> Column:
    magnitude = F.abs(F.coalesce(change, F.lit(0.0)))
    bands = iter(VOLATILITY_BANDS)
    bound, label = next(bands)
    expr = F.when(magnitude >= bound, F.lit(label))
    for bound, label in bands:
        expr = expr.when(magnitude >= bound, F.lit(label))
    return expr.otherwise(F.lit(VOLATILITY_BANDS[-1][1]))


def trend_expr(change: Column) -> Column:
    value = F.coalesce(change, F.lit(0.0))
    expr: Column | None = None
    for test in (
        *((value >= bound, label) for bound, label in TREND_UP),
        *((value <= bound, label) for bound, label in TREND_DOWN),
    ):
        cond, label = test
        expr = F.when(cond, F.lit(label)) if expr is None else expr.when(cond, F.lit(label))
    assert expr is not None
    return expr.otherwise(F.lit(TREND_FLAT))


def enrich(windows: DataFrame, *, final: bool, keep: tuple[str, ...] = ()) -> DataFrame:
    """Add labels and the `final` flag, in the WindowAggregate field order (plus `keep`)."""
    change = F.col("avg_change_24h")
    return (
        windows.withColumn("volatility", volatility_expr(change))
        .withColumn("trend", trend_expr(change))
        .withColumn("final", F.lit(final))
        .withColumn("kind", F.lit("live"))
        .select(*WindowAggregate.model_fields, *keep)
    )
