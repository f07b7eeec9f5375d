"""What every exchange protocol module shares about its markets: which coins it lists (from the
one coin table) and how an observation of one becomes a Tick."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from cryptopulse.coins import Listing, exchange_symbols, symbol_of
from cryptopulse.schema import Tick
from cryptopulse.status import DISPLAY_NAMES


class Market:
    """One subscribed symbol: the coin it is and the currency it is quoted in."""

    __slots__ = ("coin", "listing", "symbol")

    def __init__(self, coin: str, listing: Listing) -> None:
        self.coin = coin
        self.symbol = symbol_of(coin)
        self.listing = listing


def listed(exchange: str, coins: Sequence[str]) -> dict[str, Market]:
    """The exchange's symbol (BTCUSDT, BTC-USD, BTC/USD) -> Market, for the coins the table
    lists on that exchange."""
    return {
        sym: Market(coin, listing)
        for sym, (coin, listing) in exchange_symbols(exchange, coins).items()
    }


def make_tick(
    source: str, market: Market, price: float, at: datetime, **figures: Any
) -> Tick | None:
    """The Tick of one observation, or None when its figures break the contract."""
    try:
        return Tick(
            coin=market.coin,
            symbol=market.symbol,
            price=price,
            timestamp=at,
            source=source,
            quote=market.listing.quote,
            **figures,
        )
    except ValidationError:
        return None


def split(items: Sequence[str], size: int) -> list[list[str]]:
    """`items` in chunks of at most `size` (subscriptions per connection or per message)."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def subscribed(exchange: str, coins: Sequence[str]) -> tuple[dict[str, Market], list[str]]:
    """(the markets to subscribe, the coins the exchange does not list); none listed is an
    error that says where the table is."""
    markets = listed(exchange, coins)
    if not markets:
        raise ValueError(
            f"none of the coins is listed on {DISPLAY_NAMES.get(exchange, exchange)} in the coin "
            "table (cryptopulse/coins.py)"
        )
    held = {m.coin for m in markets.values()}
    return markets, [c for c in coins if c not in held]


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def describe(
    exchange: str, noun: str, channels: str, url: str, subscribed: int, connections: int,
    unlisted: Sequence[str],
) -> str:  # fmt: skip
    """What a protocol subscribes, for the producer's start line: `2 Kraken symbols (trade +
    ticker) from wss://… over 1 connection; not on Kraken: binancecoin`."""
    name = DISPLAY_NAMES.get(exchange, exchange)
    text = (
        f"{plural(subscribed, f'{name} {noun}')} ({channels}) from {url} "
        f"over {plural(connections, 'connection')}"
    )
    return text + (f"; not on {name}: {', '.join(unlisted)}" if unlisted else "")
