"""The coin table: one definition in cryptopulse/coins.py, read by every layer."""

from __future__ import annotations

from pathlib import Path

import orjson

from cryptopulse.coins import (
    BY_ID,
    COINS,
    DEFAULT_COINS,
    EXCHANGES,
    Listing,
    exchange_symbols,
    listing_of,
    symbol_of,
    web_table,
)
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


def test_each_default_coin_has_its_exchange_symbols_and_quote() -> None:
    assert listing_of("bitcoin", "binance") == Listing("BTCUSDT", "USDT")
    assert listing_of("bitcoin", "coinbase") == Listing("BTC-USD", "USD")
    assert listing_of("bitcoin", "kraken") == Listing("BTC/USD", "USD")
    assert listing_of("avalanche-2", "binance") == Listing("AVAXUSDT", "USDT")
    for coin in DEFAULT_COINS:
        assert listing_of(coin, "binance") is not None, coin
    # Not every exchange lists every coin, and some coins (stablecoins in USDT) have none.
    assert listing_of("binancecoin", "coinbase") is None
    assert listing_of("tether", "binance") is None
    assert listing_of("no-such-coin", "binance") is None
    assert listing_of("bitcoin", "no-such-exchange") is None


def test_exchange_symbols_map_back_to_the_coin_with_its_quote() -> None:
    table = exchange_symbols("binance", ["bitcoin", "ethereum", "tether", "unknown"])
    assert table == {
        "BTCUSDT": ("bitcoin", Listing("BTCUSDT", "USDT")),
        "ETHUSDT": ("ethereum", Listing("ETHUSDT", "USDT")),
    }
    coinbase = exchange_symbols("coinbase", DEFAULT_COINS)
    assert "BNB-USD" not in coinbase and coinbase["SOL-USD"][0] == "solana"
    for exchange in EXCHANGES:
        listings = [c.listings[exchange] for c in COINS if exchange in c.listings]
        assert len({x.symbol for x in listings}) == len(listings)  # one coin per symbol
        assert all(x.quote in ("USD", "USDT") for x in listings)


def test_over_a_hundred_coins_on_binance_each_under_its_own_ticker() -> None:
    """The 100-symbol benchmark (bench/bench_exchange.py) streams them; the defaults stay ten."""
    on_binance = exchange_symbols("binance", [c.id for c in COINS])
    assert len(on_binance) >= 100
    suffix = {"binance": "USDT", "coinbase": "-USD", "kraken": "/USD"}
    for coin in COINS:  # a typo in a base would subscribe to another coin's market
        for exchange, listing in coin.listings.items():
            assert listing.symbol == coin.symbol.upper() + suffix[exchange], (coin.id, exchange)
    assert listing_of("matic-network", "binance") is None  # delisted for POL
    assert listing_of("polygon-ecosystem-token", "binance") == Listing("POLUSDT", "USDT")
    assert listing_of("1inch", "coinbase") == Listing("1INCH-USD", "USD")
