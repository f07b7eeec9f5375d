from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from cryptopulse.schema import Tick, json_schema, tick_from_json, tick_to_json

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
