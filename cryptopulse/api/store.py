"""Latest window and bounded recent history per (source, coin), and each source's status.

Windows are keyed by `(source, coin, window_start)`: a later record for the same window
replaces the earlier one (non-final updates arrive every trigger, then one final record),
and two sources never share a series. A record equal to the one already stored is no
change (the same window arrives by POST and from the windows topic). Pure and
synchronous: the API server touches it only from its event loop.

Bounded: at most `max_series` series of `history_per_coin` windows each, and `MAX_SOURCES`
statuses. A series whose newest window ended `idle` before the newest window in the store
(event time, so a replay of old data is not evicted as it loads) is evicted by a sweep every
minute, or sooner when a new series finds the store full; a new series beyond the limit
is refused.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptopulse.schema import SourceStatus, WindowAggregate

SeriesKey = tuple[str, str]
"""(source, coin)"""

MAX_SOURCES = 64
"""Statuses kept: a source is one producer, a handful in any real deployment."""

SWEEP_EVERY = timedelta(minutes=1)
# Statuses this close to the newest one come from the running producer (it repeats them every
# `producer.status_interval`, 10 s by default).
RUNNING_WITHIN = timedelta(minutes=1)
"""Idle series are looked for this often (a sweep walks every series)..."""
SWEEP_WHEN_FULL = timedelta(seconds=1)
"""...and at most this often when a new series finds the store full."""


@dataclass
class Applied:
    changed: list[WindowAggregate] = field(default_factory=list)
    """The records that changed something (the ones to broadcast)."""
    refused: int = 0
    """Records of new series refused because the store was full (`too_many_coins`)."""


@dataclass
class _Series:
    starts: list[datetime] = field(default_factory=list)  # sorted ascending
    windows: dict[datetime, WindowAggregate] = field(default_factory=dict)
    encoded: dict[datetime, bytes] = field(default_factory=dict)
    """Windows' JSON, made when a snapshot first needs it and kept until the window changes."""

    def newest(self) -> WindowAggregate:
        return self.windows[self.starts[-1]]


class MarketStore:
    """Recent windows per (source, coin), at most `history_per_coin`, oldest evicted first;
    at most `max_series` series."""

    def __init__(
        self,
        history_per_coin: int,
        max_series: int = 5_000,
        idle: timedelta = timedelta(hours=6),
    ) -> None:
        if history_per_coin < 1 or max_series < 1:
            raise ValueError("history_per_coin and max_series must be at least 1")
        self.history_per_coin = history_per_coin
        self.max_series = max_series
        self.idle = idle
        self._series: dict[SeriesKey, _Series] = {}
        self.statuses: dict[str, SourceStatus] = {}
        self.version = 0
        """Incremented by every change; a snapshot taken at version v contains changes <= v."""
        self.evicted = 0
        """Series evicted for being idle, since the start."""
        self._last_sweep: datetime | None = None
        self._newest_end: datetime | None = None

    def apply(self, records: Iterable[WindowAggregate], now: datetime) -> Applied:
        """Store the records (`now`: the caller's clock, which paces the idle sweeps)."""
        applied = Applied()
        if self._last_sweep is None:
            self._last_sweep = now
        elif now - self._last_sweep >= SWEEP_EVERY:
            self.evict_idle(now)
        for record in records:
            put = self._put(record, now)
            if put is None:
                applied.refused += 1
            elif put:
                applied.changed.append(record)
        if applied.changed:
            self.version += 1
        return applied

    def set_status(self, status: SourceStatus) -> bool:
        """Keep a source's latest status; False when it is not newer than the one held (or a new
        source beyond MAX_SOURCES)."""
        held = self.statuses.get(status.source)
        if held is None and len(self.statuses) >= MAX_SOURCES:
            return False
        if held is not None and (held == status or held.updated_at > status.updated_at):
            return False
        self.statuses[status.source] = status
        self.version += 1
        return True

    def evict_idle(self, now: datetime) -> int:
        """Drop every series whose newest window ended more than `idle` before the newest
        window in the store."""
        self._last_sweep = now
        if self._newest_end is None:
            return 0
        cutoff = self._newest_end - self.idle
        idle = [key for key, s in self._series.items() if s.newest().window_end < cutoff]
        for key in idle:
            del self._series[key]
        if idle:
            self.evicted += len(idle)
            self.version += 1
        return len(idle)

    def _room_for_one_more(self, now: datetime) -> bool:
        if len(self._series) < self.max_series:
            return True
        if self._last_sweep is None or now - self._last_sweep >= SWEEP_WHEN_FULL:
            self.evict_idle(now)
        return len(self._series) < self.max_series

    def _put(self, record: WindowAggregate, now: datetime) -> bool | None:
        """True when stored and new, False when no change, None when refused (store full)."""
        key = (record.source, record.coin)
        series = self._series.get(key)
        if series is None:
            if not self._room_for_one_more(now):
                return None
            series = self._series[key] = _Series()
        if self._newest_end is None or record.window_end > self._newest_end:
            self._newest_end = record.window_end
        start = record.window_start
        held = series.windows.get(start)
        if held is not None:
            if held == record:
                return False
            series.windows[start] = record
            series.encoded.pop(start, None)
            return True
        if len(series.starts) >= self.history_per_coin and start < series.starts[0]:
            return False  # older than everything we keep: it would be evicted at once
        bisect.insort(series.starts, start)
        series.windows[start] = record
        while len(series.starts) > self.history_per_coin:
            oldest = series.starts.pop(0)
            del series.windows[oldest]
            series.encoded.pop(oldest, None)
        return True

    # -- reading ---------------------------------------------------------------------------

    @property
    def sources(self) -> list[str]:
        """Every source with data or a status."""
        return sorted({source for source, _ in self._series} | set(self.statuses))

    def coins(self, source: str | None = None) -> list[str]:
        return sorted({c for s, c in self._series if source is None or s == source})

    def default_source(self) -> str | None:
        """The running source: of those whose status is as recent as the newest one (a
        producer repeats its statuses while it runs; an earlier run's stays on the compacted
        topic), the first by name, so several sources of one producer do not take turns;
        without statuses, the source of the newest window."""
        if self.statuses:
            newest = max(s.updated_at for s in self.statuses.values())
            return min(
                s.source for s in self.statuses.values() if newest - s.updated_at <= RUNNING_WITHIN
            )
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

    def snapshot(self, per_coin: int, max_records: int | None = None) -> list[WindowAggregate]:
        """The last `per_coin` windows of every series (the latest included), oldest first, by
        series; at most `max_records` in all: history is cut to fit, and when even one window
        per series is too many, the most recently updated series are kept."""
        return [s.windows[start] for s, start in self._snapshot_keys(per_coin, max_records)]

    def snapshot_json(
        self, per_coin: int, encode: Callable[[WindowAggregate], bytes], max_records: int | None
    ) -> list[bytes]:
        """`snapshot()` as each window's JSON by `encode`, made once per window and kept (a new
        client costs a join, not the encoding of every window)."""
        out = []
        for series, start in self._snapshot_keys(per_coin, max_records):
            data = series.encoded.get(start)
            if data is None:
                data = series.encoded[start] = encode(series.windows[start])
            out.append(data)
        return out

    def _snapshot_keys(
        self, per_coin: int, max_records: int | None
    ) -> Iterator[tuple[_Series, datetime]]:
        keys = sorted(self._series)
        if max_records is not None:
            if len(keys) > max_records:
                keys = sorted(
                    heapq.nlargest(
                        max_records, keys, key=lambda k: self._series[k].newest().window_end
                    )
                )
            per_coin = min(per_coin, max(1, max_records // max(1, len(keys))))
        for key in keys:
            series = self._series[key]
            for start in series.starts[-per_coin:] if per_coin > 0 else []:
                yield series, start

    @property
    def series_count(self) -> int:
        return len(self._series)

    def __len__(self) -> int:
        return sum(len(s.starts) for s in self._series.values())
