from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from cryptopulse.schema import (
    Candle,
    Tick,
    WindowAggregate,
    json_schema,
    tick_from_json,
    tick_to_json,
    window_problem,
)
from tests.factories import window

ROOT = Path(__file__).resolve().parents[2]


def test_web_types_come_from_the_current_schema() -> None:
    """web/src/generated/ must be regenerated when schema.py changes (npm run gen:schema gen:types)."""
    committed = orjson.loads((ROOT / "web" / "src" / "generated" / "schema.json").read_bytes())
    assert committed == json_schema()


def test_tick_json_round_trip_matches_the_design_example() -> None:
    example = (
        b'{"coin":"bitcoin","symbol":"btc","price":97012.5,"change_24h":-1.84,'
        b'"volume_24h":31250000000.0,"market_cap":1920000000000.0,'
        b'"timestamp":"2026-11-24T22:00:00Z","source":"coingecko"}'
    )
    assert tick_to_json(tick_from_json(example)) == example


@pytest.mark.parametrize(
    "change",
    [
        {"price": 0},
        {"price": float("nan")},
        {"price": 1e308},  # finite, but a window's sum of such prices is not
        {"price": 1.0, "size": 1.1e18},
        {"coin": "Bitcoin"},
        {"timestamp": "2026-11-24T22:00:00"},  # no zone
        {"volume_24h": -1.0},
        {"extra": 1},
    ],
)
def test_invalid_ticks_are_rejected(change: dict[str, object]) -> None:
    base = {
        "coin": "bitcoin",
        "symbol": "btc",
        "price": 1.0,
        "timestamp": "2026-11-24T22:00:00Z",
        "source": "test",
    }
    with pytest.raises(ValidationError):
        Tick.model_validate({**base, **change})


def test_a_window_of_trades_is_valid_and_a_ticker_window_has_no_trade_fields() -> None:
    traded = window(price=100.0, trades=4, quote="USDT")
    assert (traded.vwap, traded.traded_volume, traded.trade_count) == (100.0, 2.0, 4)
    assert window_problem(traded) is None
    ticker = window(price=100.0)
    assert (ticker.quote, ticker.vwap, ticker.traded_volume, ticker.trade_count) == (None,) * 4
    # Older records (no trade fields at all) still read, with nulls.
    old = orjson.loads(ticker.model_dump_json())
    for name in ("quote", "vwap", "traded_volume", "trade_count"):
        del old[name]
    assert WindowAggregate.model_validate(old) == ticker


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"vwap": 101.0}, "price_range"),  # high is 100
        ({"vwap": 99.0}, "price_range"),  # low is 100
        ({"vwap": 100.0 * (1 + 1e-12)}, None),  # floating-point noise is tolerated
        ({"vwap": None}, "trade_fields"),
        ({"traded_volume": None}, "trade_fields"),
        ({"trade_count": None}, "trade_fields"),
        ({"vwap": None, "traded_volume": None, "trade_count": None}, None),
    ],
)
def test_window_trade_fields_must_be_consistent(
    change: dict[str, object], reason: str | None
) -> None:
    record = {**window(price=100.0, trades=2).model_dump(), **change}
    if reason is None:
        assert window_problem(WindowAggregate.model_validate(record)) is None
        return
    with pytest.raises(ValidationError) as caught:
        WindowAggregate.model_validate(record)
    assert {e["type"] for e in caught.value.errors()} == {reason}


@pytest.mark.parametrize(
    "change",
    [
        {"vwap": 0.0},
        {"traded_volume": 0.0},  # a window without trades has null, never 0
        {"trade_count": 0},
        {"trade_count": 2**53},
        {"vwap": float("inf")},
        {"quote": "usdt"},
    ],
)
def test_trade_fields_out_of_bounds_are_rejected(change: dict[str, object]) -> None:
    record = {**window(price=100.0, trades=2, quote="USD").model_dump(), **change}
    with pytest.raises(ValidationError):
        WindowAggregate.model_validate(record)


def test_a_candle_has_trade_fields_that_default_to_null() -> None:
    assert {"vwap", "traded_volume", "trade_count"} <= set(Candle.model_fields)
    assert all(Candle.model_fields[f].default is None for f in ("vwap", "traded_volume"))
