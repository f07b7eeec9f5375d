"""Final windows without a second query: the live sink remembers each open window's latest
aggregate and publishes it once more, with `final: true`, when the watermark passes it.

This mirrors what Spark does to the same state. Micro-batch b evicts the windows whose end
is at or before its watermark W_b = (max event time of batches before b) - delay, after
applying b's own rows (which Spark filters with the previous watermark W_b-1). So a window
may still be updated in batch b and closed in the same batch: `advance` takes the batch's
rows first, then closes. After b, a closed window can never change again. The tracker's
state (open windows, max event time, last batch id) is saved with each batch, so after a
crash the re-run of a batch is recognised and skipped, and nothing is finalized twice.
Windows are keyed by (source, coin, window start), like every consumer keys them.

Spark groups by the symbol too (see window.py), so a coin whose symbol changed within a
window arrives as one row per symbol: the tracker keeps each as a part of the window and
publishes their merge (`merge_parts`), so every key still has one record.
Pure logic: tested without Spark.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from cryptopulse.classify import trend, volatility
from cryptopulse.files import write_atomic

log = logging.getLogger("cryptopulse.stream.finals")

LIVE_FLAG = b'"final":false'
FINAL_FLAG = b'"final":true'
# Version 1 (no version field) keyed windows by (coin, start) only; version 2 held one record
# per window (Spark aggregated the symbol).
STATE_VERSION = 3

WindowKey = tuple[str, str, int]  # source, coin, window start (ms)


@dataclass(frozen=True)
class LiveWindow:
    """One row of a batch: a window's aggregate (as JSON) for one symbol, with what merging
    rows of other symbols needs (`first_event_ms`, `change_ticks`, `cap_event_ms`)."""

    source: str
    coin: str
    start_ms: int
    end_ms: int
    last_event_ms: int
    json: bytes
    symbol: str = ""
    first_event_ms: int = 0
    change_ticks: int = 0
    cap_event_ms: int | None = None

    @property
    def key(self) -> WindowKey:
        return (self.source, self.coin, self.start_ms)


@dataclass
class OpenWindow:
    """A window not yet final: its end and its latest row per symbol (almost always one)."""

    end_ms: int
    parts: dict[str, LiveWindow]

    def record(self) -> bytes:
        parts = list(self.parts.values())
        return parts[0].json if len(parts) == 1 else merge_parts(parts)


def _weighted(pairs: Sequence[tuple[float | None, int]]) -> float | None:
    known = [(value, n) for value, n in pairs if value is not None and n > 0]
    total = sum(n for _, n in known)
    return sum(value * n for value, n in known) / total if total else None


def merge_parts(parts: Sequence[LiveWindow]) -> bytes:
    """One window's rows of several symbols as one record, by the aggregation's own rules:
    open of the earliest tick, close (and symbol) of the latest, tick-weighted averages, the
    latest known market cap. Rare (a symbol changed within a window), so plain Python."""
    rows = [(part, orjson.loads(part.json)) for part in parts]
    first = min(rows, key=lambda r: r[0].first_event_ms)[1]
    last = max(rows, key=lambda r: r[0].last_event_ms)[1]
    capped = [r for r in rows if r[0].cap_event_ms is not None]
    volumes = [r["max_volume_24h"] for _, r in rows if r["max_volume_24h"] is not None]
    change = _weighted([(r["avg_change_24h"], p.change_ticks) for p, r in rows])
    merged = {
        **last,
        "avg_price": _weighted([(r["avg_price"], r["tick_count"]) for _, r in rows]),
        "open": first["open"],
        "high": max(r["high"] for _, r in rows),
        "low": min(r["low"] for _, r in rows),
        "avg_change_24h": change,
        "max_volume_24h": max(volumes) if volumes else None,
        "market_cap": max(capped, key=lambda r: r[0].cap_event_ms or 0)[1]["market_cap"]
        if capped
        else None,
        "tick_count": sum(r["tick_count"] for _, r in rows),
        "volatility": volatility(change),
        "trend": trend(change),
    }
    return orjson.dumps(merged)


def as_final(record: bytes) -> bytes:
    """The same aggregate marked final (Spark writes `final` last; strings cannot hold it unescaped)."""
    head, sep, tail = record.rpartition(LIVE_FLAG)
    if not sep:
        raise ValueError("not a live window record")
    return head + FINAL_FLAG + tail


@dataclass(frozen=True)
class Step:
    """What one batch publishes: each window it updated (merged per key), then the windows
    the watermark closed, as (coin, record): the coin is the record's Kafka key."""

    live: list[tuple[str, bytes]]
    finals: list[tuple[str, bytes]]


@dataclass
class FinalTracker:
    watermark_ms: int
    batch_id: int = -1
    max_event_ms: int | None = None
    open: dict[WindowKey, OpenWindow] = field(default_factory=dict)

    def watermark(self) -> int | None:
        """The watermark Spark applies to the next batch."""
        return None if self.max_event_ms is None else self.max_event_ms - self.watermark_ms

    def seen(self, batch_id: int) -> bool:
        return batch_id <= self.batch_id

    def advance(self, batch_id: int, rows: list[LiveWindow]) -> Step:
        """Take one batch's rows; return its live records and the windows that became
        final, oldest first."""
        watermark = self.watermark()  # from earlier batches, like Spark's
        touched: dict[WindowKey, None] = {}
        for row in rows:
            window = self.open.setdefault(row.key, OpenWindow(row.end_ms, {}))
            window.parts[row.symbol] = row
            touched[row.key] = None
            if self.max_event_ms is None or row.last_event_ms > self.max_event_ms:
                self.max_event_ms = row.last_event_ms
        live = [(key[1], self.open[key].record()) for key in touched]
        closed = (
            sorted((w.end_ms, key) for key, w in self.open.items() if w.end_ms <= watermark)
            if watermark is not None
            else []
        )
        finals = [(key[1], as_final(self.open.pop(key).record())) for _, key in closed]
        self.batch_id = batch_id
        return Step(live, finals)

    # -- persistence ---------------------------------------------------------------------

    def save(self, path: Path) -> None:
        state = {
            "version": STATE_VERSION,
            "batch_id": self.batch_id,
            "max_event_ms": self.max_event_ms,
            "open": [
                [src, c, s, w.end_ms, [_part_state(p) for p in w.parts.values()]]
                for (src, c, s), w in self.open.items()
            ],
        }
        write_atomic(path, orjson.dumps(state), durable=True)

    @classmethod
    def load(cls, path: Path, watermark_ms: int) -> FinalTracker:
        """The saved state; a missing, unreadable or older-version file gives a fresh tracker.

        Such a file must not crash-loop the job; the cost is finals published again (or, for
        windows open in an older version's state, not at all).
        """
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls(watermark_ms)
        try:
            state = orjson.loads(raw)
            version = state.get("version") if isinstance(state, dict) else None
            if version != STATE_VERSION:
                log.error(
                    "%s was written by another version (state version %s, this one reads %d); "
                    "starting with no open windows",
                    path,
                    version or 1,
                    STATE_VERSION,
                )
                return cls(watermark_ms)
            return cls(
                watermark_ms,
                batch_id=int(state["batch_id"]),
                max_event_ms=None if state["max_event_ms"] is None else int(state["max_event_ms"]),
                open={
                    (str(src), str(c), int(s)): _open_window(
                        str(src), str(c), int(s), int(e), parts
                    )
                    for src, c, s, e, parts in state["open"]
                },
            )
        except (ValueError, TypeError, KeyError) as exc:  # JSONDecodeError is a ValueError
            log.error("%s is unreadable (%s); starting with no open windows", path, exc)
            return cls(watermark_ms)


def _part_state(part: LiveWindow) -> list[object]:
    return [
        part.symbol,
        part.first_event_ms,
        part.last_event_ms,
        part.change_ticks,
        part.cap_event_ms,
        part.json.decode(),
    ]


def _open_window(source: str, coin: str, start: int, end: int, parts: list[Any]) -> OpenWindow:
    """An open window from its saved parts (see `_part_state`); bad values raise."""
    if not parts:
        raise ValueError("an open window without rows")
    rows = [
        LiveWindow(
            source,
            coin,
            start,
            end,
            last_event_ms=int(last),
            json=str(json).encode(),
            symbol=str(symbol),
            first_event_ms=int(first),
            change_ticks=int(changes),
            cap_event_ms=None if cap is None else int(cap),
        )
        for symbol, first, last, changes, cap, json in parts
    ]
    return OpenWindow(end, {row.symbol: row for row in rows})
