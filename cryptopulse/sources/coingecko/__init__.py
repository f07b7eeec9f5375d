"""CoinGecko: poll current prices and turn them into Ticks, in layers.

- `models`: the payloads as pydantic models and the Ticks made from them (pure);
- `retry`: `Retry-After` and the back-off, as a tenacity wait (pure);
- `client`: HTTP with the key, the request budget and the retries (I/O);
- `source`: which requests make up a cycle, and the poll schedule;
- `errors`: one exception hierarchy, each with a short `reason`.
"""

from __future__ import annotations

from cryptopulse.sources.coingecko.source import CoinGeckoSource

__all__ = ["CoinGeckoSource"]
