"""Final windows without a second query: the live sink remembers each open window's latest
aggregate and publishes it once more, with `final: true`, when the watermark passes it.

This mirrors what Spark does to the same state. Micro-batch b evicts the windows whose end
is at or before its watermark W_b = (max event time of batches before b) - delay, after
applying b's own rows (which Spark filters with the previous watermark W_b-1). So a window
may still be updated in batch b and closed in the same batch: `advance` takes the batch's
rows first, then closes. After b, a closed window can never change again. The tracker's
state (open windows, max event time, last batch id) is saved with each batch, so after a
crash the re-run of a batch is recognised and skipped, and nothing is finalized twice.
Pure logic: tested without Spark.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from cryptopulse.files import write_atomic

log = logging.getLogger("cryptopulse.stream.finals")

LIVE_FLAG = b'"final":false'
FINAL_FLAG = b'"final":true'


@dataclass(frozen=True)
class LiveWindow:
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
    open: dict[tuple[str, int], tuple[int, bytes]] = field(default_factory=dict)

    def watermark(self) -> int | None:
        """The watermark Spark applies to the next batch."""
        return None if self.max_event_ms is None else self.max_event_ms - self.watermark_ms

    def seen(self, batch_id: int) -> bool:
        return batch_id <= self.batch_id

    def advance(self, batch_id: int, rows: list[LiveWindow]) -> list[tuple[str, bytes]]:
        """Take one batch's live rows; return the windows that became final, oldest first."""
        watermark = self.watermark()  # from earlier batches, like Spark's
        for row in rows:
            self.open[(row.coin, row.start_ms)] = (row.end_ms, row.json)
            if self.max_event_ms is None or row.last_event_ms > self.max_event_ms:
                self.max_event_ms = row.last_event_ms
        closed = (
            sorted((end, key) for key, (end, _) in self.open.items() if end <= watermark)
            if watermark is not None
            else []
        )
        finals = [(key[0], as_final(self.open.pop(key)[1])) for _, key in closed]
        self.batch_id = batch_id
        return finals

    # -- persistence ---------------------------------------------------------------------

    def save(self, path: Path) -> None:
        state = {
            "batch_id": self.batch_id,
            "max_event_ms": self.max_event_ms,
            "open": [[c, s, e, j.decode()] for (c, s), (e, j) in self.open.items()],
        }
        write_atomic(path, orjson.dumps(state), durable=True)

    @classmethod
    def load(cls, path: Path, watermark_ms: int) -> FinalTracker:
        try:
            state = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return cls(watermark_ms)
        except orjson.JSONDecodeError:
            # Unreadable state must not crash-loop the job; the cost is finals published again.
            log.error("%s is unreadable; starting with no open windows", path)
            return cls(watermark_ms)
        return cls(
            watermark_ms,
            batch_id=state["batch_id"],
            max_event_ms=state["max_event_ms"],
            open={(c, s): (e, j.encode()) for c, s, e, j in state["open"]},
        )
