"""Each pure transform of the streaming job on a small static frame (real Spark, no Kafka)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson
import pytest

from cryptopulse.schema import WindowAggregate
from cryptopulse.stream.finals import FinalTracker
from cryptopulse.stream.parse import (
    EXCERPT_BYTES,
    count_rejected,
    dead_letters,
    parse_ticks,
    valid_ticks,
)
from cryptopulse.stream.sinks import read_partials
from cryptopulse.stream.window import PartialWindows
from tests.factories import kafka_rows

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = pytest.mark.integration


# valid_ticks' columns: a quote (ticker) tick has no size; a trade has one.
TRADE_COLUMNS = (
    "source string, coin string, symbol string, price double, change_24h double, "
    "volume_24h double, market_cap double, size double, quote string, event_time timestamp"
)


def quotes(spark: SparkSession, rows: list[tuple[object, ...]]) -> DataFrame:
    """Ticks without size or quote (as a ticker-only source sends), as valid_ticks gives them."""
    return spark.createDataFrame([(*r[:-1], None, None, r[-1]) for r in rows], TRADE_COLUMNS)


def windows_of(ticks: DataFrame) -> list[dict[str, object]]:
    """The ticks as one micro-batch through the job's aggregation: Spark's partials, read
    and folded by the live sink's tracker, as its JSON records (each validated as /ingest
    validates it), by source and window start."""
    change = FinalTracker(5_000).advance(0, read_partials(ticks, PartialWindows.of(30)))
    records = [orjson.loads(raw) for _, raw in change.live]
    for raw in records:
        WindowAggregate.model_validate(raw)  # consistent, with every field in range
    return sorted(records, key=lambda r: (str(r["source"]), str(r["window_start"])))


GOOD = '{"coin":"bitcoin","symbol":"btc","price":97012.5,"change_24h":-1.84,"volume_24h":3.1e10,"market_cap":1.9e12,"timestamp":"2026-11-24T22:00:00Z","source":"coingecko"}'

TRADE = GOOD[:-1] + ',"size":0.5,"quote":"USDT"}'


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (GOOD, None),
        (GOOD.replace('"change_24h":-1.84', '"change_24h":null'), None),
        (GOOD.replace("22:00:00Z", "22:00:00.123456+00:00"), None),
        ("{not json", "not valid JSON or a field has the wrong type"),
        (None, "empty value"),
        ("", "empty value"),
        (
            GOOD.replace('"price":97012.5', '"price":"cheap"'),
            "not valid JSON or a field has the wrong type",
        ),
        (GOOD.replace('"price":97012.5,', ""), "missing field: price"),
        (GOOD.replace('"coin":"bitcoin",', ""), "missing field: coin"),
        (GOOD.replace('"price":97012.5', '"price":0'), "price is not positive"),
        (GOOD.replace('"price":97012.5', '"price":-1.5'), "price is not positive"),
        # would overflow the window's sums into an infinite average
        (GOOD.replace('"price":97012.5', '"price":1e308'), "price is larger than 1e+18"),
        (GOOD.replace("2026-11-24T22:00:00Z", "last tuesday"), "bad timestamp"),
        (GOOD.replace('"volume_24h":3.1e10', '"volume_24h":-5'), "volume_24h is negative"),
        (
            GOOD.replace('"coin":"bitcoin"', '"coin":"Bitcoin"'),
            "coin does not match ^[a-z0-9][a-z0-9._-]*$",
        ),
        (GOOD.replace('"symbol":"btc"', '"symbol":""'), "symbol is empty"),
        (GOOD.replace('"symbol":"btc"', '"symbol":"' + "x" * 21 + '"'), "symbol is longer than 20"),
        (GOOD.replace("22:00:00Z", "22:05:31Z"), "timestamp is in the future"),  # 301 s ahead
        (GOOD.replace("22:00:00Z", "22:05:29Z"), None),  # within the 300 s allowance
        # Jackson reads the bad bytes in a string as U+FFFD: without a check it would pass.
        (GOOD.encode().replace(b'"btc"', b'"b\xc3\x28"'), "not valid UTF-8"),
        (GOOD.replace('"price":97012.5', '"price":1e400'), "price is not a finite number"),
        (GOOD.replace('"price":97012.5', '"price":-1e400'), "price is not a finite number"),
        (
            GOOD.replace('"change_24h":-1.84', '"change_24h":1e400'),
            "change_24h is not a finite number",
        ),
        (
            GOOD.replace('"price":97012.5', '"price":' + "9" * 2000),
            "not valid JSON or a field has the wrong type",
        ),
        # Past Jackson's nesting limit (1,000), inside a field or around the record: not JSON.
        (
            GOOD[:-1] + ',"x":' + "[" * 10_000 + "]" * 10_000 + "}",
            "not valid JSON or a field has the wrong type",
        ),
        ("[" * 10_000 + "]" * 10_000, "not valid JSON or a field has the wrong type"),
        ('{"a":' * 10_000 + "1" + "}" * 10_000, "not valid JSON or a field has the wrong type"),
        # Below the limit, an object where the coin goes is kept as text, and fails its rules.
        (GOOD.replace('"bitcoin"', '{"a":' * 900 + "1" + "}" * 900), "coin is longer than 100"),
        (bytes(range(32)) * 32_768, "not valid JSON or a field has the wrong type"),  # 1 MiB
        # A trade's size and quote currency (#14): optional, checked when present.
        (TRADE, None),
        (TRADE.replace('"size":0.5', '"size":null'), None),
        (TRADE.replace('"size":0.5', '"size":0'), "size is not positive"),
        (TRADE.replace('"size":0.5', '"size":-2'), "size is not positive"),
        (TRADE.replace('"size":0.5', '"size":1e400'), "size is not a finite number"),
        (TRADE.replace('"size":0.5', '"size":1e18'), None),
        (TRADE.replace('"size":0.5', '"size":1.1e18'), "size is larger than 1e+18"),
        (
            TRADE.replace('"size":0.5', '"size":"half"'),
            "not valid JSON or a field has the wrong type",
        ),
        (TRADE.replace('"USDT"', '"usdt"'), "quote does not match ^[A-Z][A-Z0-9]*$"),
        (TRADE.replace('"USDT"', '"U"'), "quote is shorter than 2"),
        (TRADE.replace('"USDT"', '"' + "U" * 11 + '"'), "quote is longer than 10"),
    ],
)
def test_parse_reasons(spark: SparkSession, value: str | bytes | None, reason: str | None) -> None:
    [row] = parse_ticks(kafka_rows(spark, [value])).collect()
    assert row["reject_reason"] == reason
    if reason is None:
        assert row["event_time"] is not None and row["price"] > 0


def test_valid_and_dead_letters_split_without_loss(spark: SparkSession) -> None:
    import orjson

    parsed = parse_ticks(kafka_rows(spark, [GOOD, "nope", GOOD, None])).cache()
    assert valid_ticks(parsed).count() == 2
    letters = [orjson.loads(r["value"]) for r in dead_letters(parsed).collect()]
    assert [(x["reason"], x["size_bytes"], x["source_offset"]) for x in letters] == [
        ("not valid JSON or a field has the wrong type", 4, 1),
        ("empty value", 0, 3),
    ]


def test_each_batch_counts_its_rejected_records_as_it_parses(spark: SparkSession) -> None:
    from pyspark.sql import Observation

    observation = Observation("rejected")
    parsed = count_rejected(
        parse_ticks(kafka_rows(spark, [GOOD, "nope", GOOD, None, b"\xff"])), observation
    )
    assert valid_ticks(parsed).count() == 2  # the rows themselves are unchanged
    assert observation.get == {"rejected": 3}


def test_a_dead_letter_describes_the_value_in_a_bounded_excerpt(spark: SparkSession) -> None:
    import base64
    import hashlib

    import orjson

    big = bytes(range(256)) * 4096 + b"\xff\xfe tail"  # 1 MiB of every byte, then more
    bad_coin = GOOD.replace('"price":97012.5', '"price":-1').encode()
    rows = kafka_rows(spark, [big, bad_coin, b"\xc3\x28", '{"coin":"Not A Coin","x":'])
    letters = [
        (r["key"], orjson.loads(r["value"])) for r in dead_letters(parse_ticks(rows)).collect()
    ]
    (k0, d0), (k1, d1), (_, d2), (k3, d3) = letters
    assert d0["size_bytes"] == len(big)
    assert d0["sha256"] == hashlib.sha256(big).hexdigest()
    assert base64.b64decode(d0["excerpt_b64"], validate=True) == big[:EXCERPT_BYTES]
    assert (k0, d0["coin"], d0["reason"]) == (None, None, "not valid UTF-8")
    assert d0["source_topic"] == "ticks" and d0["source_partition"] == 0
    assert (d0["source_offset"], d0["kafka_timestamp"]) == (0, "2026-11-24T22:00:30.000Z")
    # Known coin: the key and a field; the whole value fits in the excerpt.
    assert (k1, d1["coin"], d1["reason"]) == ("bitcoin", "bitcoin", "price is not positive")
    assert base64.b64decode(d1["excerpt_b64"]) == bad_coin
    assert (d2["reason"], d2["size_bytes"]) == ("not valid UTF-8", 2)
    # A coin that is not a coin id is neither key nor field.
    assert (k3, d3["coin"]) == (None, None)
    assert all(len(orjson.dumps(d)) < 8 * 1024 for _, d in letters)


def test_window_aggregates_and_enrichment(spark: SparkSession) -> None:
    def at(second: int) -> datetime:
        return datetime(2026, 1, 1, 0, 0, second, tzinfo=UTC)

    ticks = quotes(
        spark,
        [
            ("sim", "eth", "eth", 10.0, 10.0, 5.0, None, at(40)),  # next window
            ("sim", "eth", "eth", 30.0, 12.0, 7.0, 300.0, at(15)),
            ("sim", "eth", "eth", 20.0, 8.0, 9.0, 200.0, at(5)),
            ("sim", "eth", "eth", 40.0, 10.0, 8.0, None, at(25)),  # latest, but no market cap
        ],
    )
    rows = windows_of(ticks)
    first = rows[0]
    assert list(first) == list(WindowAggregate.model_fields)
    assert {k: first[k] for k in list(first)[5:]} == {
        "avg_price": 30.0,
        "open": 20.0,
        "high": 40.0,
        "low": 20.0,
        "close": 40.0,
        "avg_change_24h": 10.0,
        "max_volume_24h": 9.0,
        "market_cap": 300.0,  # latest known cap by event time
        "tick_count": 3,
        "volatility": "High Volatility",
        "trend": "🚀 Surging",
        "final": False,
        "kind": "live",
        "quote": None,
        "vwap": None,  # no trades: no trade figures
        "traded_volume": None,
        "trade_count": None,
    }
    assert (first["source"], first["coin"]) == ("sim", "eth")
    assert rows[1]["tick_count"] == 1 and rows[1]["market_cap"] is None


def test_two_sources_of_one_coin_and_window_are_two_aggregates(spark: SparkSession) -> None:
    at = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    ticks = quotes(
        spark,
        [
            ("coingecko", "btc", "btc", 100.0, 1.0, 5.0, 10.0, at),
            ("simulated", "btc", "btc", 50.0, -3.0, 6.0, 20.0, at),
            ("simulated", "btc", "btc", 70.0, -3.0, 6.0, 20.0, at.replace(second=6)),
        ],
    )
    rows = windows_of(ticks)
    assert [
        (r["source"], r["coin"], r["avg_price"], r["tick_count"], r["trend"]) for r in rows
    ] == [
        ("coingecko", "btc", 100.0, 1, "➡️ Stable"),
        ("simulated", "btc", 60.0, 2, "📉 Falling"),
    ]
    assert rows[0]["window_start"] == rows[1]["window_start"]


def test_valid_ticks_carry_their_source(spark: SparkSession) -> None:
    [row] = valid_ticks(parse_ticks(kafka_rows(spark, [GOOD]))).collect()
    assert (row["source"], row["coin"]) == ("coingecko", "bitcoin")


def test_valid_ticks_carry_a_trades_size_and_quote(spark: SparkSession) -> None:
    rows = valid_ticks(parse_ticks(kafka_rows(spark, [TRADE, GOOD]))).collect()
    assert [(r["size"], r["quote"]) for r in rows] == [(0.5, "USDT"), (None, None)]


def _second(second: int) -> datetime:
    return datetime(2026, 1, 1, 0, 0, second, tzinfo=UTC)


def trade(price: float, size: float, second: int, quote: str | None = "USDT") -> tuple[object, ...]:
    """A trade of ethereum on `ex`: no 24 h figures (an exchange's trade message has none)."""
    return ("ex", "eth", "eth", price, None, None, None, size, quote, _second(second))


def ticker(price: float, second: int, *, change: float, volume: float) -> tuple[object, ...]:
    """A ticker tick of the same series: the 24 h figures, no size."""
    return ("ex", "eth", "eth", price, change, volume, None, None, "USDT", _second(second))


def one_window(spark: SparkSession, rows: list[tuple[object, ...]]) -> dict[str, object]:
    """The one window of `rows`, as the sink's JSON."""
    [window] = windows_of(spark.createDataFrame(rows, TRADE_COLUMNS))
    return window


def test_a_window_of_trades_has_their_vwap_volume_and_count(spark: SparkSession) -> None:
    # Arrival order is not time order: open/close still follow event time.
    window = one_window(spark, [trade(12.0, 1.0, 20), trade(10.0, 3.0, 2), trade(11.0, 0.5, 9)])
    assert {k: window[k] for k in ("open", "high", "low", "close", "tick_count")} == {
        "open": 10.0,
        "high": 12.0,
        "low": 10.0,
        "close": 12.0,
        "tick_count": 3,
    }
    assert window["avg_price"] == pytest.approx(11.0)
    assert window["vwap"] == pytest.approx((12.0 * 1 + 10.0 * 3 + 11.0 * 0.5) / 4.5)
    assert (window["traded_volume"], window["trade_count"]) == (4.5, 3)
    assert window["quote"] == "USDT"
    assert (window["avg_change_24h"], window["max_volume_24h"]) == (None, None)


def test_ohlc_come_from_the_trades_and_the_24h_figures_from_the_ticker(
    spark: SparkSession,
) -> None:
    # The ticker's prices (first, last, highest and lowest of the window) are left out of
    # the prices as soon as the window has a trade.
    window = one_window(
        spark,
        [
            ticker(50.0, 1, change=4.0, volume=900.0),
            trade(20.0, 2.0, 5),
            trade(30.0, 2.0, 10),
            ticker(5.0, 15, change=6.0, volume=1000.0),
            ticker(60.0, 29, change=2.0, volume=950.0),
        ],
    )
    assert {k: window[k] for k in ("open", "high", "low", "close", "avg_price", "vwap")} == {
        "open": 20.0,
        "high": 30.0,
        "low": 20.0,
        "close": 30.0,
        "avg_price": 25.0,
        "vwap": 25.0,
    }
    assert (window["traded_volume"], window["trade_count"], window["tick_count"]) == (4.0, 2, 5)
    assert window["avg_change_24h"] == pytest.approx(4.0)
    assert (window["max_volume_24h"], window["trend"]) == (1000.0, "📈 Rising")


def test_a_ticker_only_window_keeps_its_prices_and_has_no_trade_figures(
    spark: SparkSession,
) -> None:
    window = one_window(
        spark,
        [ticker(50.0, 1, change=1.0, volume=9.0), ticker(40.0, 20, change=3.0, volume=8.0)],
    )
    assert {k: window[k] for k in ("open", "high", "low", "close", "avg_price")} == {
        "open": 50.0,
        "high": 50.0,
        "low": 40.0,
        "close": 40.0,
        "avg_price": 45.0,
    }
    assert (window["vwap"], window["traded_volume"], window["trade_count"]) == (None, None, None)
    assert window["quote"] == "USDT"


def test_the_vwap_of_equal_prices_is_that_price_and_stays_within_the_range(
    spark: SparkSession,
) -> None:
    # sum(0.1 x s) / sum(s) is not exactly 0.1 in floating point; the window still validates.
    window = one_window(spark, [trade(0.1, s, i) for i, s in enumerate((0.3, 0.7, 1.1, 3.3))])
    assert window["vwap"] == window["low"] == window["high"] == 0.1


def test_the_quote_is_the_latest_known_one(spark: SparkSession) -> None:
    window = one_window(
        spark, [trade(10.0, 1.0, 1, "USD"), trade(10.0, 1.0, 9, "USDT"), trade(10.0, 1.0, 20, None)]
    )
    assert window["quote"] == "USDT"


def test_trades_from_kafka_records_become_a_window_with_their_vwap(spark: SparkSession) -> None:
    """parse -> valid_ticks -> partials -> the sink's merge and JSON, as the job chains them."""
    from tests.factories import tick

    values: list[str | bytes | None] = [
        tick("bitcoin", 1, 100.0, volume=5e9, size=0.25, quote="USDT"),
        tick("bitcoin", 2, 110.0, change=3.0, volume=6e9),  # the ticker: no size
        tick("bitcoin", 3, 104.0, volume=5e9, size=0.75, quote="USDT"),
        tick("bitcoin", 4, 104.0, volume=5e9, size=-1.0, quote="USDT"),  # dead letter
    ]
    parsed = parse_ticks(kafka_rows(spark, values))
    [(_, live)] = (
        FinalTracker(5_000)
        .advance(0, read_partials(valid_ticks(parsed), PartialWindows.of(30)))
        .live
    )
    window = WindowAggregate.model_validate_json(live)
    assert (window.open, window.high, window.low, window.close) == (100.0, 104.0, 100.0, 104.0)
    assert window.vwap == pytest.approx(103.0)  # (100 x 0.25 + 104 x 0.75) / 1
    assert (window.traded_volume, window.trade_count, window.tick_count) == (1.0, 2, 3)
    assert (window.quote, window.max_volume_24h) == ("USDT", 6e9)
    assert list(orjson.loads(live)) == list(WindowAggregate.model_fields)


def test_a_symbol_or_quote_change_within_a_batch_still_gives_one_window(
    spark: SparkSession,
) -> None:
    # Spark groups by symbol and quote too (so it hashes instead of sorting); the driver
    # merges a window's rows into one record, with the latest symbol and quote.
    rows = [
        ("ex", "eth", "eth", 10.0, None, None, None, 1.0, "USD", _second(1)),
        ("ex", "eth", "weth", 12.0, None, None, None, 1.0, "USDT", _second(9)),
        ("ex", "eth", "eth", 11.0, None, None, None, 2.0, "USD", _second(5)),
    ]
    ticks = spark.createDataFrame(rows, TRADE_COLUMNS)
    assert len(read_partials(ticks, PartialWindows.of(30))) == 2
    window = one_window(spark, rows)
    assert (window["symbol"], window["quote"]) == ("weth", "USDT")
    assert (window["open"], window["close"], window["high"], window["low"]) == (10, 12, 12, 10)
    assert (window["tick_count"], window["trade_count"], window["traded_volume"]) == (3, 3, 4.0)


@pytest.mark.parametrize("window_seconds", [30, 60, 0.5])
def test_window_starts_are_those_of_sparks_window_function(
    spark: SparkSession, window_seconds: float
) -> None:
    """PartialWindows computes each tick's window start itself (no window struct); it must be
    the start Spark's own tumbling window() gives, on boundaries, a microsecond either side of
    them, and before 1970."""
    from pyspark.sql import functions as F

    boundary = int(datetime(2026, 11, 24, 22, 0, 30, tzinfo=UTC).timestamp() * 1_000_000)
    micros = [
        boundary + delta
        for delta in (-1, 0, 1, 499_999, 500_000, 29_999_999, 30_000_000, 59_999_999)
    ] + [-1, 0, 1, -30_000_000, -30_000_001, -1_234_567_891]
    # each tick's coin names its event time, in microseconds
    rows = [("ex", str(m), "s", 1.0, None, None, None, None, None, None) for m in micros]
    ticks = spark.createDataFrame(rows, TRADE_COLUMNS).withColumn(
        "event_time", F.timestamp_micros(F.col("coin").cast("long"))
    )
    length = f"{int(window_seconds * 1000)} milliseconds"
    expected = {
        row.coin: row.start_ms
        for row in ticks.select(
            "coin", F.unix_millis(F.window("event_time", length).start).alias("start_ms")
        ).collect()
    }
    partials = read_partials(ticks, PartialWindows.of(window_seconds))
    assert {coin: start for _, coin, start, _ in partials} == expected
    assert {coin: state.end_ms - start for _, coin, start, state in partials} == dict.fromkeys(
        expected, int(window_seconds * 1000)
    )
