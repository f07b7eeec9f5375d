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
Pure logic: tested without Spark.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import orjson

from cryptopulse.stream.storage import CheckpointPath, write_state

log = logging.getLogger("cryptopulse.stream.finals")

LIVE_FLAG = b'"final":false'
FINAL_FLAG = b'"final":true'
# Version 1 (no version field) keyed windows by (coin, start) only.
STATE_VERSION = 2

WindowKey = tuple[str, str, int]  # source, coin, window start (ms)


@dataclass(frozen=True)
class LiveWindow:
    source: str
    coin: str
    start_ms: int
    end_ms: int
    last_event_ms: int
    json: bytes


def as_final(record: bytes) -> bytes:
    """The same aggregate marked final (Spark writes `final` last; strings cannot hold it unescaped)."""
    head, sep, tail = record.rpartition(LIVE_FLAG)
    if not sep:
        raise ValueError("not a live window record")
    return head + FINAL_FLAG + tail


@dataclass
class FinalTracker:
    watermark_ms: int
    batch_id: int = -1
    max_event_ms: int | None = None
    open: dict[WindowKey, tuple[int, bytes]] = field(default_factory=dict)

    def watermark(self) -> int | None:
        """The watermark Spark applies to the next batch."""
        return None if self.max_event_ms is None else self.max_event_ms - self.watermark_ms

    def seen(self, batch_id: int) -> bool:
        return batch_id <= self.batch_id

    def advance(self, batch_id: int, rows: list[LiveWindow]) -> list[tuple[str, bytes]]:
        """Take one batch's live rows; return the windows that became final, oldest first,
        as (coin, record): the coin is the record's Kafka key."""
        watermark = self.watermark()  # from earlier batches, like Spark's
        for row in rows:
            self.open[(row.source, row.coin, row.start_ms)] = (row.end_ms, row.json)
            if self.max_event_ms is None or row.last_event_ms > self.max_event_ms:
                self.max_event_ms = row.last_event_ms
        closed = (
            sorted((end, key) for key, (end, _) in self.open.items() if end <= watermark)
            if watermark is not None
            else []
        )
        finals = [(key[1], as_final(self.open.pop(key)[1])) for _, key in closed]
        self.batch_id = batch_id
        return finals

    # -- persistence ---------------------------------------------------------------------

    def save(self, path: CheckpointPath) -> None:
        state = {
            "version": STATE_VERSION,
            "batch_id": self.batch_id,
            "max_event_ms": self.max_event_ms,
            "open": [[src, c, s, e, j.decode()] for (src, c, s), (e, j) in self.open.items()],
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
                    (str(src), str(c), int(s)): (int(e), str(j).encode())
                    for src, c, s, e, j in state["open"]
                },
            )
        except (ValueError, TypeError, KeyError) as exc:  # JSONDecodeError is a ValueError
            log.error("%s is unreadable (%s); starting with no open windows", path, exc)
            return cls(watermark_ms)
