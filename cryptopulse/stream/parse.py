"""Kafka records -> typed ticks, or a dead letter with the reason it was rejected.

Whatever bytes a record holds (megabytes of control bytes, invalid UTF-8, JSON nested past
Jackson's depth limit, numbers past a double's range), parsing gives a row with a reason;
nothing here raises. A dead letter carries a bounded excerpt of the value, never all of it.
"""

from __future__ import annotations

from typing import Annotated, Any, get_args, get_origin

import annotated_types
from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cryptopulse.schema import MAX_AMOUNT, Tick, spark_schema

CORRUPT = "_corrupt_record"
ISO_MILLIS = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"
# Fields without which a tick is meaningless; the others may be null.
REQUIRED = ("coin", "symbol", "price", "timestamp", "source")
# Optional text fields, checked like the required ones when present.
OPTIONAL_TEXT = ("quote",)
# A dead letter's excerpt of the value: enough to see what it was, small enough for any topic.
EXCERPT_BYTES = 4096
# Name of the observed metric (and of its one column) that counts a batch's rejected records.
REJECTED = "rejected"


def _json_schema() -> T.StructType:
    schema = spark_schema(Tick, timestamps_as_strings=True)
    return schema.add(T.StructField(CORRUPT, T.StringType(), True))


def _field_metadata(name: str) -> list[Any]:
    """A Tick field's constraints; an optional field (`X | None`) keeps them on its `X`."""
    info = Tick.model_fields[name]
    if info.metadata:
        return list(info.metadata)
    for arg in get_args(info.annotation):
        if get_origin(arg) is Annotated:
            return [m for extra in get_args(arg)[1:] for m in getattr(extra, "metadata", [extra])]
    return []


def _text_rules(name: str) -> list[tuple[Column, str]]:
    """Length and pattern rules of one of Tick's text fields, read from the model (as /ingest).
    A null never fails them (a rule on null is null, which `when` treats as false)."""
    col = F.col(name)
    rules: list[tuple[Column, str]] = []
    for rule in _field_metadata(name):
        if isinstance(rule, annotated_types.MinLen):
            short = "is empty" if rule.min_length == 1 else f"is shorter than {rule.min_length}"
            rules.append((F.length(col) < rule.min_length, f"{name} {short}"))
        elif isinstance(rule, annotated_types.MaxLen):
            rules.append(
                (F.length(col) > rule.max_length, f"{name} is longer than {rule.max_length}")
            )
        elif (pattern := getattr(rule, "pattern", None)) is not None:
            rules.append((~col.rlike(pattern), f"{name} does not match {pattern}"))
    return rules


def _string_rules() -> list[tuple[Column, str]]:
    return [
        rule
        for name, info in Tick.model_fields.items()
        if info.annotation is str or name in OPTIONAL_TEXT
        for rule in _text_rules(name)
    ]


def _known_coin() -> Column:
    """The record's coin when it is a valid coin id (a dead letter's key), else null."""
    valid = F.col("coin").isNotNull()
    for failed, _ in _text_rules("coin"):
        valid = valid & ~failed
    return F.when(valid, F.col("coin"))


def _finite(col: Column) -> Column:
    return ~F.isnan(col) & (F.abs(col) != F.lit(float("inf")))


def _reject_reason(event_time: Column, max_future_seconds: float) -> Column:
    """The first reason a parsed record is not a valid Tick, or null when it is."""
    col = F.col
    checks: list[tuple[Column, str]] = [
        (col("value").isNull() | (F.octet_length(col("value")) == 0), "empty value"),
        # Jackson would read invalid bytes inside a string as U+FFFD and accept the tick.
        (~F.is_valid_utf8(col("text")), "not valid UTF-8"),
        # Also JSON nested past Jackson's depth limit (1,000) and numbers past its length limit.
        (col(CORRUPT).isNotNull(), "not valid JSON or a field has the wrong type"),
        *((col(name).isNull(), f"missing field: {name}") for name in REQUIRED),
        (~_finite(col("price")), "price is not a finite number"),
        (col("price") <= 0, "price is not positive"),
        # A window sums prices (and price x size): bounded, so no sum can overflow a double.
        (col("price") > MAX_AMOUNT, f"price is larger than {MAX_AMOUNT:g}"),
        *_string_rules(),
        (event_time.isNull(), "bad timestamp"),
        # One far-future tick would move the watermark (kept in the checkpoint) past every
        # real tick. Compared with the record's Kafka time, so a re-run batch decides alike.
        (
            event_time
            > F.col("kafka_timestamp") + F.make_dt_interval(secs=F.lit(max_future_seconds)),
            "timestamp is in the future",
        ),
        *(
            (col(name).isNotNull() & ~_finite(col(name)), f"{name} is not a finite number")
            for name in ("change_24h", "volume_24h", "market_cap", "size")
        ),
        (col("size").isNotNull() & (col("size") <= 0), "size is not positive"),
        (col("size") > MAX_AMOUNT, f"size is larger than {MAX_AMOUNT:g}"),
        *(
            (col(name).isNotNull() & (col(name) < 0), f"{name} is negative")
            for name in ("volume_24h", "market_cap")
        ),
    ]
    reason: Column | None = None
    for failed, why in checks:
        reason = F.when(failed, F.lit(why)) if reason is None else reason.when(failed, F.lit(why))
    assert reason is not None
    return reason


def parse_ticks(records: DataFrame, max_future_seconds: float = 300.0) -> DataFrame:
    """Kafka rows (key, value, topic, partition, offset, timestamp) -> ticks plus `reject_reason`.

    Valid rows have a null `reject_reason` and an `event_time` timestamp; `value` stays the
    record's bytes. Nothing is dropped here; `valid_ticks` and `dead_letters` split the result.
    """
    # inline(array(from_json(...))) puts the parsed fields behind a Generate node. Without it
    # the optimizer pushes later filters below the projection and substitutes every field
    # reference with its own from_json call: measured 5x slower on 200k ticks.
    parsed = records.select(
        F.col("value"),
        F.col("value").cast("string").alias("text"),
        F.col("topic"),
        F.col("partition"),
        F.col("offset"),
        F.col("timestamp").alias("kafka_timestamp"),
    ).select(
        "*",
        F.inline(
            F.array(
                F.from_json(
                    F.col("text"),
                    _json_schema(),
                    {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT},
                )
            )
        ),
    )
    fields = [name for name in Tick.model_fields if name != "timestamp"]
    with_time = parsed.withColumn("event_time", F.try_to_timestamp(F.col("timestamp")))
    return with_time.select(
        "value",
        "topic",
        "partition",
        "offset",
        "kafka_timestamp",
        *fields,
        "event_time",
        _reject_reason(F.col("event_time"), max_future_seconds).alias("reject_reason"),
    )


def count_rejected(parsed: DataFrame, observation: Observation | str = REJECTED) -> DataFrame:
    """`parsed` unchanged, with each batch's number of rejected records observed as `rejected`.

    In a streaming query the count reaches each batch's progress (`observedMetrics`), so the
    dead letters can be produced from the batch's offset range only when it had any, without a
    second query that reads and parses every record (see stream/rejects.py).
    """
    return parsed.observe(observation, F.count(F.col("reject_reason")).alias(REJECTED))


def valid_ticks(parsed: DataFrame) -> DataFrame:
    return parsed.where(F.col("reject_reason").isNull()).select(
        "source",
        "coin",
        "symbol",
        "price",
        "change_24h",
        "volume_24h",
        "market_cap",
        "size",
        "quote",
        "event_time",
    )


def dead_letters(parsed: DataFrame) -> DataFrame:
    """Rejected records as Kafka rows: key = coin when known, value = JSON with the reason.

    The value is described, not copied: its size, SHA-256 and first EXCERPT_BYTES (base64),
    so a dead letter stays a few KiB whatever the record held.
    """
    value = F.coalesce(F.col("value"), F.lit(b"").cast("binary"))
    coin = _known_coin()
    return parsed.where(F.col("reject_reason").isNotNull()).select(
        coin.alias("key"),
        F.to_json(
            F.struct(
                F.col("reject_reason").alias("reason"),
                F.octet_length(value).alias("size_bytes"),
                F.sha2(value, 256).alias("sha256"),
                # One line: Spark's base64 breaks lines every 76 characters by default.
                F.translate(F.base64(F.substring(value, 1, EXCERPT_BYTES)), "\r\n", "").alias(
                    "excerpt_b64"
                ),
                coin.alias("coin"),
                F.col("topic").alias("source_topic"),
                F.col("partition").alias("source_partition"),
                F.col("offset").alias("source_offset"),
                F.date_format(F.col("kafka_timestamp"), ISO_MILLIS).alias("kafka_timestamp"),
            ),
            {"ignoreNullFields": "false"},
        ).alias("value"),
    )
