"""Market sources: each is an iterable of `Batch`es of Ticks (see `base`).

`open_source` builds the one chosen by the settings (`producer.source`).
"""

from __future__ import annotations

from cryptopulse.config import ProducerSettings
from cryptopulse.sources.base import Batch, Clock, FakeClock, Source, SystemClock

SOURCE_NAMES = ("coingecko", "simulated", "replay", "binance", "coinbase", "kraken")
EXCHANGES = ("binance", "coinbase", "kraken")


def open_source(
    settings: ProducerSettings,
    *,
    clock: Clock | None = None,
    max_ticks: int | None = None,
    paced: bool = True,
) -> Source:
    """The source named by `settings.source`, configured from the settings.

    `max_ticks` and `paced` apply to the simulated source (a bounded or unpaced run).
    """
    if settings.source == "coingecko":
        from cryptopulse.sources.coingecko import CoinGeckoSource

        return CoinGeckoSource.from_settings(settings, clock=clock)
    if settings.source == "simulated":
        from cryptopulse.sources.simulated import SimulatedSource

        return SimulatedSource.from_settings(
            settings, clock=clock, paced=paced, max_ticks=max_ticks
        )
    if settings.source == "replay":
        from cryptopulse.sources.replay import ReplaySource

        return ReplaySource.from_settings(settings, clock=clock)
    if settings.source in EXCHANGES:
        from cryptopulse.sources.exchanges import open_exchange

        return open_exchange(settings)
    raise ValueError(f"unknown source {settings.source!r}; choose one of {', '.join(SOURCE_NAMES)}")


__all__ = ["SOURCE_NAMES", "Batch", "Clock", "FakeClock", "Source", "SystemClock", "open_source"]
