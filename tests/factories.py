"""Test data shared by unit and integration tests: valid contract records, and ticks as they
are sent to Kafka."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from cryptopulse.schema import SourceState, SourceStatus, WindowAggregate
from cryptopulse.stream.merge import QUOTES_LAST, WindowState

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

T0 = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=30)


def window(
    coin: str = "bitcoin",
    i: int = 0,
    *,
    price: float = 100.0,
    final: bool = True,
    source: str = "simulated",
    start: datetime = T0,
    trades: int | None = None,
    quote: str | None = None,
) -> WindowAggregate:
    """The i-th 30 s window after `start` of one coin, with every price equal to `price`;
    with `trades`, that many trades of size 0.5 each (a VWAP of `price`)."""
    begin = start + WINDOW * i
    return WindowAggregate(
        source=source,
        coin=coin,
        symbol=coin[:3],
        window_start=begin,
        window_end=begin + WINDOW,
        avg_price=price,
        open=price,
        high=price,
        low=price,
        close=price,
        avg_change_24h=0.5,
        max_volume_24h=1.0,
        market_cap=2.0,
        tick_count=3,
        volatility="Stable",
        trend="➡️ Stable",
        final=final,
        quote=quote,
        vwap=price if trades else None,
        traded_volume=0.5 * trades if trades else None,
        trade_count=trades,
    )


def status(
    source: str = "coingecko",
    state: SourceState = "live",
    *,
    at: datetime = T0,
    detail: str = "",
    last_good: datetime | None = None,
) -> SourceStatus:
    return SourceStatus(
        source=source, state=state, detail=detail, last_good=last_good, updated_at=at
    )


def iso(seconds: float, start: datetime = T0) -> str:
    """`seconds` after `start` as a tick's ISO 8601 UTC timestamp."""
    return (start + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def tick(coin: str, at: float, price: float, change: float | None = 0.0, **extra: Any) -> bytes:
    """A tick's Kafka record value, observed `at` seconds after T0 (source "test" unless given);
    a trade with `size=` (and `quote=`)."""
    record: dict[str, Any] = {
        "coin": coin,
        "symbol": coin[:3],
        "price": price,
        "change_24h": change,
        "volume_24h": extra.get("volume", 1000.0),
        "market_cap": extra.get("cap", 1e6),
        "timestamp": iso(at),
        "source": extra.get("source", "test"),
    }
    for optional in ("size", "quote"):  # left out when absent, as Tick's JSON does
        if extra.get(optional) is not None:
            record[optional] = extra[optional]
    return orjson.dumps(record)


Finals = dict[tuple[str, str, str], list[dict[str, Any]]]


def finals(records: list[dict[str, Any]]) -> Finals:
    """Final window records (as JSON from the windows topic) by (source, coin, window_start)."""
    out: Finals = {}
    for r in records:
        if r["final"]:
            out.setdefault((r["source"], r["coin"], r["window_start"]), []).append(r)
    return out


@dataclass(frozen=True)
class T:
    """One tick, as the aggregation reads it."""

    price: float
    at_us: int
    size: float | None = None
    quote: str | None = None
    change: float | None = None
    volume: float | None = None
    cap: float | None = None
    symbol: str = "btc"


def one_tick_state(t: T, end_ms: int) -> WindowState:
    """A one-tick partial, as Spark's aggregation of a batch of one tick gives it."""
    trade = t.size is not None
    penalty = 0 if trade else QUOTES_LAST
    return WindowState(
        end_ms=end_ms,
        symbol=t.symbol,
        last_us=t.at_us,
        quote=t.quote,
        quote_us=t.at_us if t.quote is not None else None,
        market_cap=t.cap,
        cap_us=t.at_us if t.cap is not None else None,
        open=t.price,
        open_key=t.at_us + penalty,
        close=t.price,
        close_key=t.at_us - penalty,
        price_sum=t.price,
        tick_count=1,
        tick_high=t.price,
        tick_low=t.price,
        trade_high=t.price if trade else None,
        trade_low=t.price if trade else None,
        trade_price_sum=t.price if trade else None,
        notional=t.price * t.size if t.size is not None else None,
        traded_volume=t.size,
        trades=1 if trade else 0,
        change_sum=t.change,
        change_count=0 if t.change is None else 1,
        max_volume_24h=t.volume,
    )


def kafka_rows(spark: SparkSession, values: list[str | bytes | None]) -> DataFrame:
    """A frame shaped like the Kafka source's rows (partition 0, offsets from 0), with these
    values."""
    from pyspark.sql import types

    schema = types.StructType(
        [
            types.StructField("key", types.BinaryType()),
            types.StructField("value", types.BinaryType()),
            types.StructField("topic", types.StringType()),
            types.StructField("partition", types.IntegerType()),
            types.StructField("offset", types.LongType()),
            types.StructField("timestamp", types.TimestampType()),
        ]
    )
    now = T0 + timedelta(seconds=30)  # Kafka's time: 30 s after the ticks' T0
    rows = [
        (None, v.encode() if isinstance(v, str) else v, "ticks", 0, i, now)
        for i, v in enumerate(values)
    ]
    return spark.createDataFrame(rows, schema)
