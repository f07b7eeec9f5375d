"""The open windows and their finals, kept by the live sink in the driver.

Spark aggregates each micro-batch's ticks into partials per window, without state; the
tracker folds them into the open windows (merge.WindowState) and returns each touched
window's record, live. Then it closes every window whose end is at or before the watermark
(the latest event time seen, this batch included, minus the delay) and returns its record
once more, final. A window is closed once: a later tick for it is late, dropped and counted.
Any tick less than the delay older than the latest is never late, as with Spark's watermark.
The tracker's state (open windows, max event time, last batch id) is saved with each batch
next to the query's checkpoint, so a restart resumes with what it had, and the re-run of a
batch after a crash is recognised and skipped: nothing is counted or finalized twice.
Windows are keyed by (source, coin, window start), like every consumer keys them.
Pure logic: tested without Spark.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import orjson

from cryptopulse.stream.merge import WindowState, window_record
from cryptopulse.stream.storage import CheckpointPath, write_state

log = logging.getLogger("cryptopulse.stream.finals")

# Version 1 (no version field) keyed windows by (coin, start) only; version 2 kept each open
# window's last record, while Spark's state store held its aggregate.
STATE_VERSION = 3

WindowKey = tuple[str, str, int]  # source, coin, window start (ms)


Partial = tuple[str, str, int, WindowState]  # source, coin, window start (ms), aggregate


@dataclass(frozen=True)
class Advance:
    """What one batch changed: its windows' records (live, then those it closed, as final),
    each as (coin, record) since the coin is the record's Kafka key; and its late ticks."""

    live: list[tuple[str, bytes]]
    finals: list[tuple[str, bytes]]
    late_ticks: int


@dataclass
class FinalTracker:
    watermark_ms: int
    batch_id: int = -1
    max_event_ms: int | None = None
    open: dict[WindowKey, WindowState] = field(default_factory=dict)

    def watermark(self) -> int | None:
        """Max event time seen minus the delay: windows that end at or before it are final."""
        return None if self.max_event_ms is None else self.max_event_ms - self.watermark_ms

    def seen(self, batch_id: int) -> bool:
        return batch_id <= self.batch_id

    def advance(self, batch_id: int, partials: list[Partial]) -> Advance:
        """Fold one batch's partials into the open windows, then close what the watermark
        passed. A partial of a window closed by an earlier batch is late: dropped, counted."""
        closed_through = self.watermark()
        touched: dict[WindowKey, None] = {}  # in order, once each (a window may have 2 rows)
        late = 0
        for source, coin, start_ms, part in partials:
            event_ms = part.last_us // 1000
            if self.max_event_ms is None or event_ms > self.max_event_ms:
                self.max_event_ms = event_ms
            if closed_through is not None and part.end_ms <= closed_through:
                late += part.tick_count
                continue
            key = (source, coin, start_ms)
            state = self.open.get(key)
            if state is None:
                self.open[key] = part
            else:
                state.add(part)
            touched[key] = None
        live = [(key[1], window_record(*key, self.open[key], final=False)) for key in touched]
        watermark = self.watermark()
        closed = (
            sorted(
                (state.end_ms, key) for key, state in self.open.items() if state.end_ms <= watermark
            )
            if watermark is not None
            else []
        )
        finals = [
            (key[1], window_record(*key, self.open.pop(key), final=True)) for _, key in closed
        ]
        self.batch_id = batch_id
        return Advance(live, finals, late)

    # -- persistence ---------------------------------------------------------------------

    def save(self, path: CheckpointPath) -> None:
        state = {
            "version": STATE_VERSION,
            "batch_id": self.batch_id,
            "max_event_ms": self.max_event_ms,
            "open": [(src, c, s, *w.values()) for (src, c, s), w in self.open.items()],
        }
        write_state(path, orjson.dumps(state), durable=True)

    @classmethod
    def load(cls, path: CheckpointPath, watermark_ms: int) -> FinalTracker:
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
                    (str(src), str(c), int(s)): WindowState.checked(values)
                    for src, c, s, *values in state["open"]
                },
            )
        except (ValueError, TypeError, KeyError) as exc:  # JSONDecodeError, ValidationError too
            log.error("%s is unreadable (%s); starting with no open windows", path, exc)
            return cls(watermark_ms)
