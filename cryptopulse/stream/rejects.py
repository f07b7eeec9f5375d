"""Dead letters without a second streaming query.

The windows query reads and parses every record once, and counts each batch's rejected
records (`parse.count_rejected`, an observed metric). Only a batch that had any is read
again, from Kafka, as a bounded batch job over exactly its offset range (the range and the
count come with the batch's progress); its rejected records are parsed again (the same
records give the same decisions: the rules read only the record and its Kafka time) and
written by `sinks.DeadLetterSink`, which never fails. A batch with no rejected record
(nearly all of them) costs nothing more.

This runs on its own thread, after the batch has committed, so dead letters never hold up
the windows. The sink's state file keeps the last batch handled (with or without rejects);
after a crash, the batches the query committed since then are read again as one range
(`committed_gap`, from the offsets the query's checkpoint logged), so no dead letter is
lost; some may be written twice, as before.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from cryptopulse.stream.parse import REJECTED, dead_letters, parse_ticks
from cryptopulse.stream.storage import CheckpointPath

if TYPE_CHECKING:
    from collections.abc import Callable

    from pyspark.sql import DataFrame

    from cryptopulse.stream.sinks import DeadLetterSink

log = logging.getLogger("cryptopulse.stream.rejects")


@dataclass(frozen=True)
class RejectedRange:
    """One batch's offset range (Kafka source offset JSON, or `earliest`) and its rejects."""

    batch_id: int
    start: str
    end: str
    rejected: int


def _offsets(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def rejected_range(progress: dict[str, Any], initial: str) -> RejectedRange | None:
    """The batch's range when its progress counted rejected records, else None.

    `progress` is a query progress as JSON; `initial` is the query's starting offsets, the
    start of its first batch (whose progress has no start offset)."""
    rejected = (progress.get("observedMetrics") or {}).get(REJECTED) or {}
    count = int(rejected.get(REJECTED) or 0)
    sources = progress.get("sources") or []
    if count <= 0 or len(sources) != 1:
        return None
    end = _offsets(sources[0].get("endOffset"))
    if end is None:
        return None
    start = _offsets(sources[0].get("startOffset")) or initial
    return RejectedRange(int(progress["batchId"]), start, end, count)


def _logged_offsets(path: CheckpointPath) -> str | None:
    """The source offsets Spark logged for a batch (`offsets/<id>`: version, metadata, then
    one line per source; this query has one), or None when the file is gone or not that."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    return lines[2] if len(lines) == 3 and lines[0].startswith("v") else None


def committed_gap(checkpoint: CheckpointPath, done: int) -> RejectedRange | None:
    """The batches the query committed after batch `done`, as one range (rejects unknown), or
    None when there are none (or `done` is -1: nothing handled yet, e.g. a new checkpoint)."""
    if done < 0:
        return None
    try:
        committed = [int(p.name) for p in (checkpoint / "commits").iterdir() if p.name.isdigit()]
    except OSError:
        return None
    last = max(committed, default=-1)
    if last <= done:
        return None
    start = _logged_offsets(checkpoint / "offsets" / str(done))
    end = _logged_offsets(checkpoint / "offsets" / str(last))
    if start is None or end is None:
        log.warning(
            "batches %d-%d may have rejected records without dead letters: their offsets "
            "are no longer in %s",
            done + 1,
            last,
            checkpoint / "offsets",
        )
        return None
    return RejectedRange(last, start, end, rejected=0)


class RejectsWorker:
    """Reads each submitted range again and hands its dead letters to the sink, in order,
    on one daemon thread. Never raises; `stop` waits a bounded time for what is queued."""

    def __init__(
        self,
        read_range: Callable[[RejectedRange], DataFrame],
        sink: DeadLetterSink,
        max_future_seconds: float,
    ) -> None:
        self.read_range = read_range
        self.sink = sink
        self.max_future_seconds = max_future_seconds
        self.queue: queue.Queue[RejectedRange | int | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="dead-letters", daemon=True)
        self.idle = threading.Event()
        self.idle.set()

    def start(self) -> None:
        self.thread.start()

    def submit(self, batch: RejectedRange | int) -> None:
        """A batch to read again, or the id of a batch without rejects (only recorded)."""
        self.idle.clear()
        self.queue.put(batch)

    def _run(self) -> None:
        while (batch := self.queue.get()) is not None:
            if isinstance(batch, int):
                self.sink.handled(batch)
            else:
                self.process(batch)
            if self.queue.empty():
                self.idle.set()

    def process(self, batch: RejectedRange) -> None:
        stats = self.sink.stats
        try:
            records = self.read_range(batch)
            letters = dead_letters(parse_ticks(records, self.max_future_seconds))
            self.sink(letters, batch.batch_id)
        except Exception as exc:  # a dead letter is never worth stopping the job for
            log.error("batch %d: dead letters not written: %s", batch.batch_id, exc)
            with stats.lock:
                stats.dead_letters_failed += max(batch.rejected, 1)
            return
        with stats.lock:
            written = stats.emitted_by_batch.pop((self.sink.name, batch.batch_id), 0)
            failed = stats.dead_letters_failed
            total = stats.dead_letters_published + failed
        if written:
            log.warning(
                "batch %d [%s]: %d records rejected (total %d, %d not delivered)",
                batch.batch_id,
                self.sink.name,
                written,
                total,
                failed,
            )

    def stop(self, timeout: float) -> None:
        """Let what is queued finish for up to `timeout` seconds, then end the thread."""
        self.queue.put(None)
        if self.thread.is_alive():
            self.thread.join(timeout)
            if self.thread.is_alive():
                log.warning("dead letters still being written at stop; left unfinished")
