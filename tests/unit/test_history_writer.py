"""The history writer: batches, a bounded queue that drops and counts, a flush on stop, the
retention cleanup on its thread."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry

from cryptopulse.history.sqlite import SqliteHistory
from cryptopulse.history.writer import HistoryMetrics, HistoryWriter, WriterConfig
from tests.factories import T0, WINDOW, window
from tests.waiting import wait_for


def config(**changes: object) -> WriterConfig:
    base: dict[str, object] = {
        "batch_max": 7,
        "queue_max": 1000,
        "retention": timedelta(days=30),
        "cleanup_interval": 3600.0,
    }
    return WriterConfig(**{**base, **changes})  # type: ignore[arg-type]


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_everything_queued_is_written_in_batches_and_flushed_on_stop(tmp_path: Path) -> None:
    store, registry = SqliteHistory(tmp_path / "h.sqlite3"), CollectorRegistry()
    writer = HistoryWriter(store, config(), HistoryMetrics(registry), clock=lambda: T0)
    writer.start()
    for i in range(0, 50, 10):
        assert writer.submit([window("bitcoin", j) for j in range(i, i + 10)]) == 10
    writer.stop()  # flushes what is still queued
    assert store.count() == 50
    assert value(registry, "cryptopulse_history_windows_stored_total") == 50
    batches = value(registry, "cryptopulse_history_write_batch_seconds_count")
    assert batches >= 50 / 7  # never more than batch_max per transaction
    store.close()


def test_a_full_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    store, registry = SqliteHistory(tmp_path / "h.sqlite3"), CollectorRegistry()
    writer = HistoryWriter(store, config(queue_max=15), HistoryMetrics(registry))
    # not started: nothing drains the queue
    assert writer.submit([window("bitcoin", i) for i in range(10)]) == 10
    assert writer.submit([window("solana", i) for i in range(10)]) == 5
    assert writer.submit([window("cardano", 0)]) == 0
    dropped = value(registry, "cryptopulse_history_windows_dropped_total", reason="queue_full")
    assert dropped == 6
    writer.start()
    writer.stop()
    assert store.count() == 15
    store.close()


def test_the_cleanup_runs_at_start_and_every_interval(tmp_path: Path) -> None:
    store, registry = SqliteHistory(tmp_path / "h.sqlite3"), CollectorRegistry()
    store.write([window("bitcoin", i) for i in range(10)])
    now = [T0 + timedelta(days=30) + 3 * WINDOW]  # windows 0..2 older than 30 days
    writer = HistoryWriter(
        store, config(cleanup_interval=0.05), HistoryMetrics(registry), clock=lambda: now[0]
    )
    writer.start()
    wait_for(lambda: store.count() == 7, 10, "the cleanup at start")
    now[0] += 5 * WINDOW
    wait_for(lambda: store.count() == 2, 10, "the next periodic cleanup")
    writer.stop()
    assert value(registry, "cryptopulse_history_windows_purged_total") == 8
    store.close()
