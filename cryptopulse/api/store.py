"""Latest window and bounded recent history per (source, coin), and each source's status.

Windows are keyed by `(source, coin, window_start)`: a later record for the same window
replaces the earlier one (non-final updates arrive every trigger, then one final record),
and two sources never share a series. A record equal to the one already stored is no
change (the same window arrives by POST and from the windows topic). Pure and
synchronous: the API server touches it only from its event loop.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from cryptopulse.schema import SourceStatus, WindowAggregate

SeriesKey = tuple[str, str]
"""(source, coin)"""


@dataclass
class _Series:
    starts: list[datetime] = field(default_factory=list)  # sorted ascending
    windows: dict[datetime, WindowAggregate] = field(default_factory=dict)

    def newest(self) -> WindowAggregate:
        return self.windows[self.starts[-1]]


class MarketStore:
    """Recent windows per (source, coin), at most `history_per_coin`, oldest evicted first."""

    def __init__(self, history_per_coin: int) -> None:
        if history_per_coin < 1:
            raise ValueError("history_per_coin must be at least 1")
        self.history_per_coin = history_per_coin
        self._series: dict[SeriesKey, _Series] = {}
        self.statuses: dict[str, SourceStatus] = {}
        self.version = 0
        """Incremented by every change; a snapshot taken at version v contains changes <= v."""

    def apply(self, records: Iterable[WindowAggregate]) -> list[WindowAggregate]:
        """Store the records; return those that changed something (the ones to broadcast)."""
        changed = [record for record in records if self._put(record)]
        if changed:
            self.version += 1
        return changed

    def set_status(self, status: SourceStatus) -> bool:
        """Keep a source's latest status; False when it is not newer than the one held."""
        held = self.statuses.get(status.source)
        if held is not None and (held == status or held.updated_at > status.updated_at):
            return False
        self.statuses[status.source] = status
        self.version += 1
        return True

    def _put(self, record: WindowAggregate) -> bool:
        series = self._series.setdefault((record.source, record.coin), _Series())
        start = record.window_start
        held = series.windows.get(start)
        if held is not None:
            if held == record:
                return False
            series.windows[start] = record
            return True
        if len(series.starts) >= self.history_per_coin and start < series.starts[0]:
            return False  # older than everything we keep: it would be evicted at once
        bisect.insort(series.starts, start)
        series.windows[start] = record
        while len(series.starts) > self.history_per_coin:
            del series.windows[series.starts.pop(0)]
        return True

    # -- reading ---------------------------------------------------------------------------

    @property
    def sources(self) -> list[str]:
        """Every source with data or a status."""
        return sorted({source for source, _ in self._series} | set(self.statuses))

    def coins(self, source: str | None = None) -> list[str]:
        return sorted({c for s, c in self._series if source is None or s == source})

    def default_source(self) -> str | None:
        """The running source: the newest status (its producer repeats it while it runs),
        else the source of the newest window."""
        if self.statuses:
            return max(self.statuses.values(), key=lambda s: s.updated_at).source
        if self._series:
            return max(self._series.values(), key=lambda s: s.newest().window_end).newest().source
        return None

    def newest_end(self, source: str) -> datetime | None:
        ends = [s.newest().window_end for (src, _), s in self._series.items() if src == source]
        return max(ends, default=None)

    def latest(self, source: str) -> list[WindowAggregate]:
        """The most recent window of every coin of `source`, by coin id."""
        return [self._series[(source, c)].newest() for c in self.coins(source)]

    def history(
        self, source: str, coin: str, limit: int | None = None
    ) -> list[WindowAggregate] | None:
        """The coin's most recent windows from `source`, oldest first; None if never seen."""
        series = self._series.get((source, coin))
        if series is None:
            return None
        starts = series.starts if limit is None else series.starts[-limit:] if limit > 0 else []
        return [series.windows[s] for s in starts]

    def snapshot(self, per_coin: int) -> list[WindowAggregate]:
        """The last `per_coin` windows of every series (the latest included), oldest first."""
        out: list[WindowAggregate] = []
        for key in sorted(self._series):
            out.extend(self.history(*key, per_coin) or [])
        return out

    def __len__(self) -> int:
        return sum(len(s.starts) for s in self._series.values())
