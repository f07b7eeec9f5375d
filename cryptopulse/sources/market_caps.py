"""Market caps from CoinGecko onto exchange ticks, when both run (`--source binance,coingecko`).

Exchanges publish no market cap. `MarketCaps` remembers the latest cap CoinGecko gave for each
coin and fills `market_cap` on the ticks of other sources that lack one. Pure: no clock, no I/O.
A cap is a coin's figure in USD whatever the tick's quote currency (the dashboard shows it as
such). Ticks that came before CoinGecko's first poll have none, as before.
"""

from __future__ import annotations

from collections.abc import Iterable

from cryptopulse.schema import Tick

CAP_SOURCE = "coingecko"


class MarketCaps:
    """The latest CoinGecko market cap per coin; `fill` puts it on ticks that lack one."""

    def __init__(self) -> None:
        self.caps: dict[str, float] = {}  # bounded by the coins CoinGecko is asked for
        self.filled = 0

    def observe(self, ticks: Iterable[Tick]) -> None:
        """Remember the caps in CoinGecko's ticks (ticks of other sources are ignored)."""
        for tick in ticks:
            if tick.source == CAP_SOURCE and tick.market_cap is not None:
                self.caps[tick.coin] = tick.market_cap

    def fill(self, ticks: list[Tick]) -> list[Tick]:
        """The ticks, each without a cap given the coin's latest known one (new objects: a
        Tick is frozen); the list itself when there is nothing to fill."""
        caps = self.caps
        if not caps:
            return ticks
        out: list[Tick] = []
        for tick in ticks:
            cap = caps.get(tick.coin) if tick.market_cap is None else None
            if cap is not None:
                tick = tick.model_copy(update={"market_cap": cap})
                self.filled += 1
            out.append(tick)
        return out
