"""The coin table: every coin the project knows by name, in one place.

Each coin has its CoinGecko id (the key on the wire and in Kafka), its ticker, its display
name and, for the ten followed by default, rough late-2024 market figures that the simulator
starts from and their symbol and quote currency on each exchange that lists them (bitcoin ↔
BTCUSDT on Binance ↔ BTC-USD on Coinbase ↔ BTC/USD on Kraken's WebSocket v2). Everything else
reads this table: the default coins in the settings, the tickers CoinGecko's `/simple/price`
does not send, the simulator's starting market, each exchange stream's symbols and the web
app's display names (`cryptopulse schema --coins web/src/generated/coins.json` writes them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal


@dataclass(frozen=True)
class Market:
    """Figures the simulator starts a coin from."""

    price: float  # USD
    supply: float  # circulating supply
    volume: float  # typical 24 h volume, USD
    volatility: float  # daily volatility of returns (0.03 = 3 %)


@dataclass(frozen=True)
class Listing:
    """A coin's market on one exchange: the exchange's symbol and the currency it is quoted in.

    The quote goes into every Tick from that exchange: USDT is not USD, and a price in one is
    never silently taken for a price in the other."""

    symbol: str
    quote: str


Exchange = Literal["binance", "coinbase", "kraken"]
EXCHANGES: Final[tuple[Exchange, ...]] = ("binance", "coinbase", "kraken")


def _listings(base: str, *, coinbase: bool = True, kraken: bool = True) -> dict[str, Listing]:
    """The usual symbols: Binance spot against USDT (BTCUSDT), Coinbase (BTC-USD) and Kraken's
    WebSocket v2 (BTC/USD) against USD; an exchange that does not list the coin is left out."""
    found = {"binance": Listing(f"{base}USDT", "USDT")}
    if coinbase:
        found["coinbase"] = Listing(f"{base}-USD", "USD")
    if kraken:
        found["kraken"] = Listing(f"{base}/USD", "USD")
    return found


@dataclass(frozen=True)
class Coin:
    id: str
    symbol: str
    name: str
    market: Market | None = None  # set for the default coins, which are followed out of the box
    listings: Mapping[str, Listing] = field(default_factory=dict)  # exchange -> its market


COINS: Final[tuple[Coin, ...]] = (
    Coin("bitcoin", "btc", "Bitcoin", Market(97_000.0, 19.8e6, 3.5e10, 0.030), _listings("BTC")),
    Coin("ethereum", "eth", "Ethereum", Market(3_400.0, 120.4e6, 2.0e10, 0.040), _listings("ETH")),
    Coin(
        "binancecoin",
        "bnb",
        "BNB",
        Market(650.0, 144e6, 1.8e9, 0.035),
        _listings("BNB", coinbase=False, kraken=False),
    ),
    Coin("solana", "sol", "Solana", Market(240.0, 475e6, 4.0e9, 0.060), _listings("SOL")),
    Coin("cardano", "ada", "Cardano", Market(1.0, 35e9, 1.5e9, 0.060), _listings("ADA")),
    Coin("ripple", "xrp", "XRP", Market(1.4, 57e9, 8.0e9, 0.070), _listings("XRP")),
    Coin("polkadot", "dot", "Polkadot", Market(9.0, 1.5e9, 6.0e8, 0.060), _listings("DOT")),
    Coin("dogecoin", "doge", "Dogecoin", Market(0.40, 147e9, 5.0e9, 0.080), _listings("DOGE")),
    Coin("avalanche-2", "avax", "Avalanche", Market(45.0, 410e6, 1.0e9, 0.070), _listings("AVAX")),
    Coin("chainlink", "link", "Chainlink", Market(22.0, 630e6, 1.2e9, 0.060), _listings("LINK")),
    Coin("tether", "usdt", "Tether"),
    Coin("usd-coin", "usdc", "USDC"),
    Coin("tron", "trx", "TRON"),
    Coin("litecoin", "ltc", "Litecoin"),
    Coin("shiba-inu", "shib", "Shiba Inu"),
    Coin("bitcoin-cash", "bch", "Bitcoin Cash"),
    Coin("stellar", "xlm", "Stellar"),
    Coin("uniswap", "uni", "Uniswap"),
    Coin("near", "near", "NEAR Protocol"),
    Coin("matic-network", "matic", "Polygon"),
    Coin("polygon-ecosystem-token", "pol", "POL (ex-MATIC)"),
    Coin("internet-computer", "icp", "Internet Computer"),
    Coin("the-open-network", "ton", "Toncoin"),
    Coin("wrapped-bitcoin", "wbtc", "Wrapped Bitcoin"),
    Coin("staked-ether", "steth", "Lido Staked Ether"),
    Coin("monero", "xmr", "Monero"),
    Coin("cosmos", "atom", "Cosmos Hub"),
    Coin("ethereum-classic", "etc", "Ethereum Classic"),
    Coin("aptos", "apt", "Aptos"),
    Coin("sui", "sui", "Sui"),
)

BY_ID: Final[dict[str, Coin]] = {coin.id: coin for coin in COINS}

# The coins followed when the settings name none.
DEFAULT_COINS: Final[tuple[str, ...]] = tuple(c.id for c in COINS if c.market is not None)


def listing_of(coin_id: str, exchange: str) -> Listing | None:
    """A coin's market on `exchange`, or None when the table has none."""
    known = BY_ID.get(coin_id)
    return None if known is None else known.listings.get(exchange)


def exchange_symbols(exchange: str, coin_ids: Iterable[str]) -> dict[str, tuple[str, Listing]]:
    """The exchange's symbol -> (coin id, listing) of those `coin_ids` it lists."""
    found: dict[str, tuple[str, Listing]] = {}
    for coin_id in coin_ids:
        listing = listing_of(coin_id, exchange)
        if listing is not None:
            found[listing.symbol] = (coin_id, listing)
    return found


def symbol_of(coin_id: str) -> str:
    """A coin's ticker: from the table, else the id's first word (at most 10 characters)."""
    known = BY_ID.get(coin_id)
    if known is not None:
        return known.symbol
    words = [w for w in coin_id.replace(".", "-").replace("_", "-").split("-") if w]
    if len(words) > 1 and words[-1].isdigit():  # "avalanche-2" style suffixes
        words = words[:-1]
    return (words[0] if words else coin_id)[:10] or coin_id[:10]


def web_table() -> list[dict[str, Any]]:
    """What the web app needs of each coin (written to web/src/generated/coins.json)."""
    return [{"id": c.id, "symbol": c.symbol, "name": c.name} for c in COINS]
