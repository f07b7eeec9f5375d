"""One API server's history: the store, its writer and the threads that read it.

Reads run on a small pool of their own (each thread keeps its own connection), never on the
event loop; the writer's thread writes meanwhile (WAL).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from cryptopulse.config import Settings
from cryptopulse.history.rollup import CandleRow
from cryptopulse.history.sqlite import SqliteHistory
from cryptopulse.history.store import HistoryStore
from cryptopulse.history.writer import HistoryMetrics, HistoryWriter, WriterConfig

T = TypeVar("T")

READ_THREADS = 4


def database_path(settings: Settings) -> Path:
    """`history.path`, else `<data>/history/api-<port>.sqlite3`: each server its own file."""
    chosen = settings.history.path
    return chosen or settings.data_dir / "history" / f"api-{settings.api.port}.sqlite3"


class History:
    def __init__(self, store: HistoryStore, writer: HistoryWriter, metrics: HistoryMetrics):
        self.store = store
        self.writer = writer
        self.metrics = metrics
        self._pool = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="history-read")

    @classmethod
    def open(cls, settings: Settings, metrics: HistoryMetrics) -> History:
        h = settings.history
        store = SqliteHistory(database_path(settings))
        config = WriterConfig(
            batch_max=h.batch_max,
            queue_max=h.queue_max,
            retention=timedelta(days=h.retention_days),
            cleanup_interval=h.cleanup_interval,
        )
        return cls(store, HistoryWriter(store, config, metrics), metrics)

    def start(self) -> None:
        self.writer.start()

    def stop(self) -> None:
        """Flush the writer, end the readers, close the database (blocking: call off the loop)."""
        self.writer.stop()
        self._pool.shutdown(wait=True)
        self.store.close()

    async def _read(self, query: str, call: Callable[[], T]) -> T:
        def timed() -> T:
            began = time.perf_counter()
            try:
                return call()
            finally:
                self.metrics.query_seconds.labels(query).observe(time.perf_counter() - began)

        return await asyncio.get_running_loop().run_in_executor(self._pool, timed)

    async def candles(
        self, source: str, coin: str, interval: int, start: datetime, end: datetime
    ) -> tuple[str | None, list[CandleRow]]:
        """The coin's symbol (None when nothing is stored) and its candles."""
        store = self.store
        return await self._read(
            "candles",
            lambda: (store.symbol(source, coin), store.candles(source, coin, interval, start, end)),
        )

    async def closes(
        self, source: str, interval: int, start: datetime, end: datetime
    ) -> dict[str, list[float]]:
        store = self.store
        return await self._read("closes", lambda: store.closes(source, interval, start, end))

    async def sources(self) -> list[str]:
        return await self._read("sources", self.store.sources)
