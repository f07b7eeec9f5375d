"""The coin table: every coin the project knows by name, in one place.

Each coin has its CoinGecko id (the key on the wire and in Kafka), its ticker, its display
name and, for the ten followed by default, rough late-2024 market figures that the simulator
starts from. Everything else reads this table: the default coins in the settings, the tickers
CoinGecko's `/simple/price` does not send, the simulator's starting market and the web app's
display names (`cryptopulse schema --coins web/src/generated/coins.json` writes them for it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final


@dataclass(frozen=True)
class Market:
    """Figures the simulator starts a coin from."""

    price: float  # USD
    supply: float  # circulating supply
    volume: float  # typical 24 h volume, USD
    volatility: float  # daily volatility of returns (0.03 = 3 %)


@dataclass(frozen=True)
class Coin:
    id: str
    symbol: str
    name: str
    market: Market | None = None  # set for the default coins, which are followed out of the box


COINS: Final[tuple[Coin, ...]] = (
    Coin("bitcoin", "btc", "Bitcoin", Market(97_000.0, 19.8e6, 3.5e10, 0.030)),
    Coin("ethereum", "eth", "Ethereum", Market(3_400.0, 120.4e6, 2.0e10, 0.040)),
    Coin("binancecoin", "bnb", "BNB", Market(650.0, 144e6, 1.8e9, 0.035)),
    Coin("solana", "sol", "Solana", Market(240.0, 475e6, 4.0e9, 0.060)),
    Coin("cardano", "ada", "Cardano", Market(1.0, 35e9, 1.5e9, 0.060)),
    Coin("ripple", "xrp", "XRP", Market(1.4, 57e9, 8.0e9, 0.070)),
    Coin("polkadot", "dot", "Polkadot", Market(9.0, 1.5e9, 6.0e8, 0.060)),
    Coin("dogecoin", "doge", "Dogecoin", Market(0.40, 147e9, 5.0e9, 0.080)),
    Coin("avalanche-2", "avax", "Avalanche", Market(45.0, 410e6, 1.0e9, 0.070)),
    Coin("chainlink", "link", "Chainlink", Market(22.0, 630e6, 1.2e9, 0.060)),
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
