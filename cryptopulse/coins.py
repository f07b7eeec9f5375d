"""The coin table: every coin the project knows by name, in one place.

Each coin has its CoinGecko id (the key on the wire and in Kafka), its ticker, its display
name, for the ten followed by default rough late-2024 market figures that the simulator starts
from, and its symbol and quote currency on each exchange known to list it (bitcoin ↔ BTCUSDT
on Binance ↔ BTC-USD on Coinbase ↔ BTC/USD on Kraken's WebSocket v2): over 100 coins on
Binance spot against USDT; on Coinbase and Kraken only the pairs known to trade there (a wrong
listing would subscribe to a market that does not exist; a missing one only leaves the coin
out). Only the ten defaults are followed unless the settings name others. Everything else
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


def _binance(base: str) -> dict[str, Listing]:
    """Listed on Binance (against USDT) only, as far as this table knows."""
    return _listings(base, coinbase=False, kraken=False)


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
    Coin("usd-coin", "usdc", "USDC", listings=_binance("USDC")),
    Coin("tron", "trx", "TRON", listings=_listings("TRX", coinbase=False)),
    Coin("litecoin", "ltc", "Litecoin", listings=_listings("LTC")),
    Coin("shiba-inu", "shib", "Shiba Inu", listings=_listings("SHIB")),
    Coin("bitcoin-cash", "bch", "Bitcoin Cash", listings=_listings("BCH")),
    Coin("stellar", "xlm", "Stellar", listings=_listings("XLM")),
    Coin("uniswap", "uni", "Uniswap", listings=_listings("UNI")),
    Coin("near", "near", "NEAR Protocol", listings=_listings("NEAR", coinbase=False)),
    Coin("matic-network", "matic", "Polygon"),  # Binance delisted MATIC for POL (2024)
    Coin("polygon-ecosystem-token", "pol", "POL (ex-MATIC)", listings=_binance("POL")),
    Coin("internet-computer", "icp", "Internet Computer", listings=_listings("ICP", kraken=False)),
    Coin("the-open-network", "ton", "Toncoin", listings=_binance("TON")),
    Coin("wrapped-bitcoin", "wbtc", "Wrapped Bitcoin"),
    Coin("staked-ether", "steth", "Lido Staked Ether"),
    Coin("monero", "xmr", "Monero"),  # delisted by Binance (2024)
    Coin("cosmos", "atom", "Cosmos Hub", listings=_listings("ATOM")),
    Coin("ethereum-classic", "etc", "Ethereum Classic", listings=_listings("ETC")),
    Coin("aptos", "apt", "Aptos", listings=_listings("APT", kraken=False)),
    Coin("sui", "sui", "Sui", listings=_binance("SUI")),
    # Long-listed on Binance spot against USDT (the 100-symbol benchmark streams them); on
    # Coinbase and Kraken only where that pair is known to trade.
    Coin("vechain", "vet", "VeChain", listings=_binance("VET")),
    Coin("theta-token", "theta", "Theta Network", listings=_binance("THETA")),
    Coin("neo", "neo", "NEO", listings=_binance("NEO")),
    Coin("iota", "iota", "IOTA", listings=_binance("IOTA")),
    Coin("elrond-erd-2", "egld", "MultiversX", listings=_binance("EGLD")),
    Coin("hedera-hashgraph", "hbar", "Hedera", listings=_listings("HBAR", kraken=False)),
    Coin("filecoin", "fil", "Filecoin", listings=_listings("FIL")),
    Coin("algorand", "algo", "Algorand", listings=_listings("ALGO")),
    Coin("aave", "aave", "Aave", listings=_listings("AAVE")),
    Coin("maker", "mkr", "Maker", listings=_listings("MKR")),
    Coin("the-graph", "grt", "The Graph", listings=_listings("GRT")),
    Coin("tezos", "xtz", "Tezos", listings=_listings("XTZ")),
    Coin("the-sandbox", "sand", "The Sandbox", listings=_binance("SAND")),
    Coin("decentraland", "mana", "Decentraland", listings=_listings("MANA")),
    Coin("axie-infinity", "axs", "Axie Infinity", listings=_listings("AXS")),
    Coin("chiliz", "chz", "Chiliz", listings=_listings("CHZ", kraken=False)),
    Coin("quant-network", "qnt", "Quant", listings=_listings("QNT", kraken=False)),
    Coin("flow", "flow", "Flow", listings=_binance("FLOW")),
    Coin("zcash", "zec", "Zcash", listings=_listings("ZEC")),
    Coin("dash", "dash", "Dash", listings=_listings("DASH", coinbase=False)),
    Coin("curve-dao-token", "crv", "Curve DAO", listings=_listings("CRV")),
    Coin("lido-dao", "ldo", "Lido DAO", listings=_listings("LDO")),
    Coin("arbitrum", "arb", "Arbitrum", listings=_listings("ARB")),
    Coin("optimism", "op", "Optimism", listings=_listings("OP")),
    Coin("injective-protocol", "inj", "Injective", listings=_listings("INJ")),
    Coin("render-token", "render", "Render", listings=_binance("RENDER")),
    Coin("blockstack", "stx", "Stacks", listings=_listings("STX", kraken=False)),
    Coin("immutable-x", "imx", "Immutable", listings=_listings("IMX", kraken=False)),
    Coin("pepe", "pepe", "Pepe", listings=_listings("PEPE", coinbase=False)),
    Coin("bonk", "bonk", "Bonk", listings=_binance("BONK")),
    Coin("floki", "floki", "FLOKI", listings=_binance("FLOKI")),
    Coin("dogwifcoin", "wif", "dogwifhat", listings=_binance("WIF")),
    Coin("ethena", "ena", "Ethena", listings=_binance("ENA")),
    Coin("celestia", "tia", "Celestia", listings=_binance("TIA")),
    Coin("sei-network", "sei", "Sei", listings=_binance("SEI")),
    Coin("jupiter-exchange-solana", "jup", "Jupiter", listings=_binance("JUP")),
    Coin("pyth-network", "pyth", "Pyth Network", listings=_binance("PYTH")),
    Coin("worldcoin-wld", "wld", "Worldcoin", listings=_binance("WLD")),
    Coin(
        "fetch-ai",
        "fet",
        "Artificial Superintelligence Alliance",
        listings=_listings("FET", kraken=False),
    ),
    Coin("thorchain", "rune", "THORChain", listings=_binance("RUNE")),
    Coin("gala", "gala", "GALA", listings=_listings("GALA", kraken=False)),
    Coin("enjincoin", "enj", "Enjin Coin", listings=_binance("ENJ")),
    Coin("basic-attention-token", "bat", "Basic Attention", listings=_listings("BAT")),
    Coin("1inch", "1inch", "1inch", listings=_listings("1INCH")),
    Coin("compound-governance-token", "comp", "Compound", listings=_listings("COMP")),
    Coin("yearn-finance", "yfi", "yearn.finance", listings=_listings("YFI")),
    Coin("sushi", "sushi", "SushiSwap", listings=_listings("SUSHI")),
    Coin("havven", "snx", "Synthetix Network", listings=_listings("SNX")),
    Coin("zilliqa", "zil", "Zilliqa", listings=_binance("ZIL")),
    Coin("kusama", "ksm", "Kusama", listings=_listings("KSM", coinbase=False)),
    Coin("qtum", "qtum", "Qtum", listings=_binance("QTUM")),
    Coin("icon", "icx", "ICON", listings=_binance("ICX")),
    Coin("ontology", "ont", "Ontology", listings=_binance("ONT")),
    Coin("ravencoin", "rvn", "Ravencoin", listings=_binance("RVN")),
    Coin("harmony", "one", "Harmony", listings=_binance("ONE")),
    Coin("ankr", "ankr", "Ankr Network", listings=_listings("ANKR", kraken=False)),
    Coin("iotex", "iotx", "IoTeX", listings=_binance("IOTX")),
    Coin("holotoken", "hot", "Holo", listings=_binance("HOT")),
    Coin("nervos-network", "ckb", "Nervos Network", listings=_binance("CKB")),
    Coin("celo", "celo", "Celo", listings=_binance("CELO")),
    Coin("kava", "kava", "Kava", listings=_listings("KAVA", coinbase=False)),
    Coin("pancakeswap-token", "cake", "PancakeSwap", listings=_binance("CAKE")),
    Coin("trust-wallet-token", "twt", "Trust Wallet", listings=_binance("TWT")),
    Coin("conflux-token", "cfx", "Conflux", listings=_binance("CFX")),
    Coin("apecoin", "ape", "ApeCoin", listings=_listings("APE")),
    Coin("gmx", "gmx", "GMX", listings=_binance("GMX")),
    Coin("blur", "blur", "Blur", listings=_binance("BLUR")),
    Coin("mask-network", "mask", "Mask Network", listings=_listings("MASK", kraken=False)),
    Coin("rocket-pool", "rpl", "Rocket Pool", listings=_listings("RPL", kraken=False)),
    Coin("ssv-network", "ssv", "SSV Network", listings=_binance("SSV")),
    Coin("woo-network", "woo", "WOO", listings=_binance("WOO")),
    Coin("jasmycoin", "jasmy", "JasmyCoin", listings=_binance("JASMY")),
    Coin("coti", "coti", "COTI", listings=_binance("COTI")),
    Coin("storj", "storj", "Storj", listings=_listings("STORJ")),
    Coin("skale", "skl", "SKALE", listings=_listings("SKL", kraken=False)),
    Coin("arweave", "ar", "Arweave", listings=_binance("AR")),
    Coin("mina-protocol", "mina", "Mina", listings=_binance("MINA")),
    Coin("astar", "astr", "Astar", listings=_binance("ASTR")),
    Coin("zksync", "zk", "ZKsync", listings=_binance("ZK")),
    Coin("starknet", "strk", "Starknet", listings=_binance("STRK")),
    Coin("notcoin", "not", "Notcoin", listings=_binance("NOT")),
    Coin("bittensor", "tao", "Bittensor", listings=_binance("TAO")),
    Coin("ethereum-name-service", "ens", "Ethereum Name Service", listings=_listings("ENS")),
    Coin("loopring", "lrc", "Loopring", listings=_listings("LRC")),
    Coin("zencash", "zen", "Horizen", listings=_binance("ZEN")),
    Coin("band-protocol", "band", "Band Protocol", listings=_listings("BAND")),
    Coin("api3", "api3", "API3", listings=_listings("API3", kraken=False)),
    Coin("uma", "uma", "UMA", listings=_listings("UMA")),
    Coin("kyber-network-crystal", "knc", "Kyber Network Crystal", listings=_listings("KNC")),
    Coin("livepeer", "lpt", "Livepeer", listings=_listings("LPT")),
    Coin("terra-luna-2", "luna", "Terra", listings=_binance("LUNA")),
    Coin("terra-luna", "lunc", "Terra Luna Classic", listings=_binance("LUNC")),
    Coin("wormhole", "w", "Wormhole", listings=_binance("W")),
    Coin("pendle", "pendle", "Pendle", listings=_binance("PENDLE")),
    Coin("pax-gold", "paxg", "PAX Gold", listings=_binance("PAXG")),
    Coin("axelar", "axl", "Axelar", listings=_binance("AXL")),
    Coin("arkham", "arkm", "Arkham", listings=_binance("ARKM")),
    Coin("book-of-meme", "bome", "BOOK OF MEME", listings=_binance("BOME")),
    Coin("eigenlayer", "eigen", "EigenLayer", listings=_binance("EIGEN")),
    Coin("jito-governance-token", "jto", "Jito", listings=_binance("JTO")),
    Coin("altlayer", "alt", "AltLayer", listings=_binance("ALT")),
    Coin("manta-network", "manta", "Manta Network", listings=_binance("MANTA")),
    Coin("dymension", "dym", "Dymension", listings=_binance("DYM")),
    Coin("ronin", "ron", "Ronin", listings=_binance("RON")),
    Coin("iexec-rlc", "rlc", "iExec RLC", listings=_binance("RLC")),
    Coin("0x", "zrx", "0x Protocol", listings=_listings("ZRX")),
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
