"""Market sources: each is an iterable of `Batch`es of Ticks (see `base`).

`open_source` builds the one chosen by the settings (`producer.source`), or, for a comma list
(`binance,coinbase`), each of them run together by a `CombinedSource`.
"""

from __future__ import annotations

from cryptopulse.config import SOURCE_NAMES, ProducerSettings
from cryptopulse.sources.base import Batch, Clock, FakeClock, Source, SystemClock

EXCHANGES = ("binance", "coinbase", "kraken")


def open_source(
    settings: ProducerSettings,
    *,
    clock: Clock | None = None,
    max_ticks: int | None = None,
    paced: bool = True,
) -> Source:
    """The source named by `settings.source`, configured from the settings.

    `max_ticks` and `paced` apply to the simulated source (a bounded or unpaced run). With
    several names, each source gets its own clock (`clock` is for a single one).
    """
    names = settings.source.split(",")
    if len(names) > 1:
        return _open_combined(settings, names, max_ticks=max_ticks, paced=paced)
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


def _open_combined(
    settings: ProducerSettings, names: list[str], *, max_ticks: int | None, paced: bool
) -> Source:
    from cryptopulse.sources.combined import CombinedSource

    opened: list[Source] = []
    try:
        for name in names:
            one = settings.model_copy(update={"source": name})
            opened.append(open_source(one, max_ticks=max_ticks, paced=paced))
    except BaseException:
        for source in opened:
            source.close()
        raise
    return CombinedSource(opened)


def source_names(source: Source) -> tuple[str, ...]:
    """The names of the sources `source` runs: its own, or each of a combined source's."""
    names: tuple[str, ...] = getattr(source, "names", (source.name,))
    return names


__all__ = [
    "SOURCE_NAMES",
    "Batch",
    "Clock",
    "FakeClock",
    "Source",
    "SystemClock",
    "open_source",
    "source_names",
]
