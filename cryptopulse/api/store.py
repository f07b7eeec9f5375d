"""Latest window and bounded recent history per coin, in memory.

Windows are keyed by `(coin, window_start)`: a later record for the same window
replaces the earlier one (non-final updates arrive every trigger, then one final
record). Pure and synchronous: the API server touches it only from its event loop.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from cryptopulse.schema import SourceStatusMessage, WindowAggregate


@dataclass
class _CoinHistory:
    starts: list[datetime] = field(default_factory=list)  # sorted ascending
    windows: dict[datetime, WindowAggregate] = field(default_factory=dict)


class MarketStore:
    """Recent windows per coin, at most `history_per_coin` of them, oldest evicted first."""

    def __init__(self, history_per_coin: int) -> None:
        if history_per_coin < 1:
            raise ValueError("history_per_coin must be at least 1")
        self.history_per_coin = history_per_coin
        self._coins: dict[str, _CoinHistory] = {}
        self.version = 0
        """Incremented by every change; a snapshot taken at version v contains changes <= v."""
        self.source_status: SourceStatusMessage | None = None

    def apply(self, records: Iterable[WindowAggregate]) -> int:
        """Store the records; return how many were kept (a window older than a full history is not)."""
        kept = 0
        for record in records:
            kept += self._put(record)
        if kept:
            self.version += 1
        return kept

    def set_source_status(self, status: SourceStatusMessage) -> None:
        self.source_status = status
        self.version += 1

    def _put(self, record: WindowAggregate) -> bool:
        history = self._coins.setdefault(record.coin, _CoinHistory())
        start = record.window_start
        if start in history.windows:
            history.windows[start] = record
            return True
        if len(history.starts) >= self.history_per_coin and start < history.starts[0]:
            return False  # older than everything we keep: it would be evicted at once
        bisect.insort(history.starts, start)
        history.windows[start] = record
        while len(history.starts) > self.history_per_coin:
            del history.windows[history.starts.pop(0)]
        return True

    @property
    def coins(self) -> list[str]:
        return sorted(self._coins)

    def latest(self) -> list[WindowAggregate]:
        """The most recent window of every coin, by coin id."""
        return [self._coins[c].windows[self._coins[c].starts[-1]] for c in self.coins]

    def history(self, coin: str, limit: int | None = None) -> list[WindowAggregate] | None:
        """The coin's most recent windows, oldest first; None for a coin never seen."""
        history = self._coins.get(coin)
        if history is None:
            return None
        starts = history.starts if limit is None else history.starts[-limit:] if limit > 0 else []
        return [history.windows[s] for s in starts]

    def snapshot(self, per_coin: int) -> list[WindowAggregate]:
        """The last `per_coin` windows of every coin (the latest included), coin by coin, oldest first."""
        out: list[WindowAggregate] = []
        for coin in self.coins:
            out.extend(self.history(coin, per_coin) or [])
        return out

    def __len__(self) -> int:
        return sum(len(h.starts) for h in self._coins.values())
