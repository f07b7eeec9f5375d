"""Source status transitions: pure, with the time passed in."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from cryptopulse.sources.base import Batch
from cryptopulse.status import StatusTracker

T0 = 1_800_000_000.0


def test_a_live_source_starts_connecting_never_live() -> None:
    status = StatusTracker("coingecko").status(T0)
    assert status.state == "connecting" and status.last_good is None
    assert status.updated_at == datetime.fromtimestamp(T0, UTC)


def test_failing_before_any_good_fetch_is_unreachable() -> None:
    tracker = StatusTracker("coingecko")
    assert tracker.observe(Batch([], error="timeout"), T0)
    status = tracker.status(T0)
    assert status.state == "unreachable" and "no data received yet" in status.detail


def test_good_then_failing_is_degraded_with_the_last_good_time_then_unreachable() -> None:
    tracker = StatusTracker("coingecko", unreachable_after=300)
    assert tracker.observe(Batch([]), T0)
    assert tracker.status(T0).state == "live"
    assert not tracker.observe(Batch([]), T0 + 30)  # still live: a heartbeat, not a change
    assert tracker.status(T0 + 30).last_good == datetime.fromtimestamp(T0 + 30, UTC)
    assert tracker.observe(Batch([], error="server_error"), T0 + 60)
    degraded = tracker.status(T0 + 60)
    assert degraded.state == "degraded"
    assert "server error" in degraded.detail and "retrying" in degraded.detail
    assert degraded.last_good == datetime.fromtimestamp(T0 + 30, UTC)
    assert not tracker.observe(Batch([], error="server_error"), T0 + 90)
    assert tracker.observe(Batch([], error="server_error"), T0 + 330)
    assert tracker.status(T0 + 330).state == "unreachable"
    assert tracker.observe(Batch([]), T0 + 360)
    assert tracker.status(T0 + 360).state == "live"


def test_a_refused_key_is_unreachable_at_once() -> None:
    tracker = StatusTracker("coingecko")
    tracker.observe(Batch([]), T0)
    tracker.observe(Batch([], error="key_error"), T0 + 30)
    status = tracker.status(T0 + 30)
    assert status.state == "unreachable" and "API key" in status.detail


@pytest.mark.parametrize("source", ["simulated", "replay"])
def test_simulated_and_replayed_data_are_never_live(source: str) -> None:
    tracker = StatusTracker(source)
    assert tracker.status(T0).state == source
    assert not tracker.observe(Batch([]), T0)
    assert not tracker.observe(Batch([], error="invalid_line"), T0 + 1)
    assert tracker.status(T0 + 1).state == source


def test_an_exchange_shows_the_messages_its_sequence_gaps_missed() -> None:
    tracker = StatusTracker("binance")
    assert tracker.observe(Batch([]), T0)
    assert "missed" not in tracker.status(T0).detail
    assert tracker.observe(Batch([], skipped=Counter(sequence_gap=3, malformed=1)), T0 + 1)
    assert tracker.observe(Batch([], skipped=Counter(sequence_gap=2)), T0 + 2)
    status = tracker.status(T0 + 2)
    assert status.state == "live"
    assert "5 messages missed (sequence gaps) since start" in status.detail
    assert not tracker.observe(Batch([]), T0 + 3)  # no new gap: no change to broadcast
