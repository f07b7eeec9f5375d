"""The coin table: one definition in cryptopulse/coins.py, read by every layer."""

from __future__ import annotations

from pathlib import Path

import orjson

from cryptopulse.coins import BY_ID, COINS, DEFAULT_COINS, symbol_of, web_table
from cryptopulse.config import ProducerSettings
from cryptopulse.sources.simulated import coin_specs

ROOT = Path(__file__).resolve().parents[2]


def test_web_coins_come_from_the_current_table() -> None:
    """web/src/generated/coins.json must be regenerated when coins.py changes
    (`cryptopulse schema -o web/src/generated/schema.json --coins web/src/generated/coins.json`)."""
    committed = orjson.loads((ROOT / "web" / "src" / "generated" / "coins.json").read_bytes())
    assert committed == web_table()


def test_one_entry_per_coin_and_the_defaults_have_market_figures() -> None:
    assert len(BY_ID) == len(COINS)
    assert len(DEFAULT_COINS) == 10
    assert tuple(ProducerSettings().coins) == DEFAULT_COINS
    assert [s.coin for s in coin_specs(12, seed=1)][:10] == list(DEFAULT_COINS)
    assert [(s.symbol, s.price) for s in coin_specs(1, seed=1)] == [("btc", 97_000.0)]


def test_symbols_from_the_table_or_derived_from_the_id() -> None:
    assert symbol_of("avalanche-2") == "avax"
    assert symbol_of("polygon-ecosystem-token") == "pol"
    assert symbol_of("some-new-token") == "some"
    assert symbol_of("wormhole-3") == "wormhole"
