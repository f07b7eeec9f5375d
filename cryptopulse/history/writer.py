"""`HistoryWriter`: final windows from the event loop into the history store, on a thread.

The loop only appends a batch to a bounded queue (never blocks, never waits for the disk);
the writer's thread owns the store's write connection, writes up to `batch_max` windows per
transaction, runs the retention cleanup every `cleanup_interval`, and flushes what is queued
when stopped. Past `queue_max` waiting windows, new ones are dropped and counted (logged once
per overflow): the windows topic still holds them for a restarted server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from cryptopulse.history.store import HistoryStore
from cryptopulse.schema import WindowAggregate

log = logging.getLogger(__name__)

_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class HistoryMetrics:
    """The history's Prometheus metrics, in the server's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.stored = Counter(
            "cryptopulse_history_windows_stored",
            "Final windows written to the history database.",
            registry=registry,
        )
        self.dropped = Counter(
            "cryptopulse_history_windows_dropped",
            "Final windows not stored, by reason: queue_full (the writer fell behind), error "
            "(the database refused the batch).",
            ["reason"],
            registry=registry,
        )
        self.write_seconds = Histogram(
            "cryptopulse_history_write_batch_seconds",
            "Time to write one batch (one transaction).",
            buckets=_SECONDS,
            registry=registry,
        )
        self.purged = Counter(
            "cryptopulse_history_windows_purged",
            "Windows deleted by the retention cleanup.",
            registry=registry,
        )
        self.query_seconds = Histogram(
            "cryptopulse_history_query_seconds",
            "Time of one history read, by query: candles, closes.",
            ["query"],
            buckets=_SECONDS,
            registry=registry,
        )
        self.queued = Gauge(
            "cryptopulse_history_queue", "Windows waiting to be written.", registry=registry
        )


@dataclass(frozen=True)
class WriterConfig:
    batch_max: int
    queue_max: int
    retention: timedelta
    cleanup_interval: float


class HistoryWriter:
    def __init__(
        self,
        store: HistoryStore,
        config: WriterConfig,
        metrics: HistoryMetrics,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.config = config
        self.metrics = metrics
        self._clock = clock
        self._queue: deque[Sequence[WindowAggregate]] = deque()
        self._queued = 0  # windows in _queue
        self._cond = threading.Condition()
        self._stopping = False
        self._overflowing = False
        self._writing = 0  # windows taken from the queue, not yet committed
        self._thread: threading.Thread | None = None
        metrics.queued.set_function(lambda: self._queued)

    def start(self) -> HistoryWriter:
        self._thread = threading.Thread(target=self._run, name="history-writer", daemon=True)
        self._thread.start()
        return self

    def submit(self, windows: Sequence[WindowAggregate]) -> int:
        """Queue windows to be stored (from any thread, typically the event loop); how many
        were queued. Never blocks on the disk: a full queue drops and counts."""
        if not windows:
            return 0
        with self._cond:
            room = self.config.queue_max - self._queued
            if self._stopping or room <= 0:
                self._drop(len(windows))
                return 0
            if room < len(windows):
                self._drop(len(windows) - room)
                windows = windows[:room]
            else:
                self._overflowing = False
            self._queue.append(windows)
            self._queued += len(windows)
            self._cond.notify()
        return len(windows)

    def _drop(self, count: int) -> None:
        self.metrics.dropped.labels("queue_full").inc(count)
        if not self._overflowing:
            self._overflowing = True
            log.warning(
                "history writer behind: %d windows waiting (history.queue_max); dropping new "
                "windows until it catches up",
                self._queued,
            )

    def idle(self) -> bool:
        """Nothing queued or being written (tests, benchmarks)."""
        with self._cond:
            return self._queued == 0 and self._writing == 0

    def _take(self, timeout: float) -> list[WindowAggregate] | None:
        """Up to batch_max windows; [] on timeout; None once stopping and drained."""
        with self._cond:
            if not self._queue and not self._stopping:
                self._cond.wait(timeout)
            if not self._queue:
                return None if self._stopping else []
            batch: list[WindowAggregate] = []
            while self._queue and len(batch) < self.config.batch_max:
                head = self._queue.popleft()
                room = self.config.batch_max - len(batch)
                if len(head) > room:
                    self._queue.appendleft(head[room:])
                    head = head[:room]
                batch.extend(head)
            self._queued -= len(batch)
            self._writing = len(batch)
            return batch

    def _write(self, batch: list[WindowAggregate]) -> None:
        began = time.perf_counter()
        try:
            self.store.write(batch)
        except Exception:
            log.exception("history: a batch of %d windows could not be written", len(batch))
            self.metrics.dropped.labels("error").inc(len(batch))
        else:
            self.metrics.stored.inc(len(batch))
            self.metrics.write_seconds.observe(time.perf_counter() - began)
        finally:
            with self._cond:
                self._writing = 0

    def cleanup(self) -> int:
        """Delete what is older than the retention (on the writer's thread)."""
        try:
            purged = self.store.purge(self._clock() - self.config.retention)
        except Exception:
            log.exception("history: the retention cleanup failed")
            return 0
        self.metrics.purged.inc(purged)
        if purged:
            log.info("history: %d windows older than the retention deleted", purged)
        return purged

    def _run(self) -> None:
        next_cleanup = time.monotonic()  # once at start, then every cleanup_interval
        while True:
            if time.monotonic() >= next_cleanup:
                self.cleanup()
                next_cleanup = time.monotonic() + self.config.cleanup_interval
            batch = self._take(max(0.0, min(1.0, next_cleanup - time.monotonic())))
            if batch is None:
                return
            if batch:
                self._write(batch)

    def stop(self, timeout: float = 30.0) -> None:
        """Write what is queued, then end the thread (the caller closes the store)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("history writer did not finish within %.0f s", timeout)
