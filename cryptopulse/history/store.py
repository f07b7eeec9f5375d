"""The history store's interface: what the API, the writer and the export need from a database.

`sqlite.py` implements it (embedded, the default); a server database would be another class
with the same methods, and no caller would change. Times are UTC datetimes; intervals seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from cryptopulse.history.rollup import CandleRow
from cryptopulse.schema import WindowAggregate


class HistoryStore(Protocol):
    """Final windows keyed by (source, coin, window_start).

    A window written again replaces the one stored (a repeated final), except that a
    `backfill` window never replaces a `live` one. Writes come from one thread at a time;
    reads may come from several threads at once, while a write runs.
    """

    def write(self, windows: Sequence[WindowAggregate]) -> int:
        """Store the windows in one transaction; how many were inserted or replaced."""
        ...

    def candles(
        self, source: str, coin: str, interval: int, start: datetime, end: datetime
    ) -> list[CandleRow]:
        """The coin's windows starting in [start, end) rolled up into candles of `interval`
        seconds (epoch-aligned), oldest first; no candle where there is no window. Equal to
        `rollup.rollup` of those windows."""
        ...

    def closes(
        self, source: str, interval: int, start: datetime, end: datetime
    ) -> dict[str, list[float]]:
        """Every coin of the source: the close of each of its candles in [start, end). For
        intervals of whole hours the range is widened to whole hours (sparklines)."""
        ...

    def purge(self, before: datetime) -> int:
        """Delete the windows that start before `before`; how many were deleted."""
        ...

    def symbol(self, source: str, coin: str) -> str | None:
        """The coin's symbol, or None when nothing of it is stored."""
        ...

    def sources(self) -> list[str]:
        """Sources with stored windows."""
        ...

    def close(self) -> None:
        """Release every connection; the store is not used again."""
        ...
