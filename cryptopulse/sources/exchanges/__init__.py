"""Exchange streams (issue #14): public market data over WebSockets, as `Source`s.

`stream.py` and `source.py` hold what every exchange shares (connect, subscribe, watch,
reconnect, hand batches to the producer); each exchange module (`binance.py`) is its protocol
as pure functions. Each exchange's WebSocket URL is a setting, so the same code runs against
the local fakes in tests/fakes/ and the real exchanges.
"""

from __future__ import annotations

from cryptopulse.config import ProducerSettings
from cryptopulse.sources.exchanges.protocol import ExchangeProtocol
from cryptopulse.sources.exchanges.source import ExchangeSource
from cryptopulse.sources.exchanges.stream import StreamRules


def open_exchange(settings: ProducerSettings) -> ExchangeSource:
    """The exchange source named by `settings.source`."""
    protocol: ExchangeProtocol
    if settings.source == "binance":
        from cryptopulse.sources.exchanges.binance import BinanceProtocol

        protocol = BinanceProtocol(settings.coins, settings.binance)
    elif settings.source == "coinbase":
        from cryptopulse.sources.exchanges.coinbase import CoinbaseProtocol

        protocol = CoinbaseProtocol(settings.coins, settings.coinbase)
    elif settings.source == "kraken":
        from cryptopulse.sources.exchanges.kraken import KrakenProtocol

        protocol = KrakenProtocol(settings.coins, settings.kraken)
    else:
        raise ValueError(f"{settings.source!r} is not an exchange source")
    return ExchangeSource(
        protocol,
        StreamRules.from_settings(settings.exchange),
        flush_interval=settings.exchange.flush_interval,
        max_queue=settings.exchange.max_queue,
    )


__all__ = ["ExchangeSource", "StreamRules", "open_exchange"]
