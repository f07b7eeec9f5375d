"""What every market source shares: batches of Ticks, a clock that can be faked, the poll schedule.

A source is an iterable of `Batch`es. A batch is what the source observed in one step (a
CoinGecko poll cycle, a slice of simulated time, a stretch of a capture) together with what
it left out and why, so the producer can log one line per cycle and count every skip.

Time goes through a `Clock`, so retry back-off and poll cadence are tested with a fake clock,
and a stop request wakes any sleep at once (Ctrl-C does not wait out a 30 s poll interval).
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cryptopulse.schema import Tick, WindowAggregate


@dataclass
class Batch:
    """Ticks from one step of a source, and what the source left out (reason -> count)."""

    ticks: list[Tick]
    skipped: Counter[str] = field(default_factory=Counter)
    unchanged: int = 0
    cycle: int = 0
    error: str | None = None  # why the source got no data this step (after its retries)
    requests: int = 0  # requests made to a remote source this step
    retries: int = 0  # of which retries
    source: str | None = None  # whose batch, when several sources run (`sources.combined`)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


class Source(Protocol):
    """A market source: iterate it for batches until it ends or `stop()` is called."""

    name: str

    def __iter__(self) -> Iterator[Batch]: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


class BackfillSink(Protocol):
    """Where a source hands its past (`backfill` windows, see `cryptopulse.backfill`): the
    producer, which publishes them to the windows topic, counts and logs."""

    def publish(self, coin: str, windows: Sequence[WindowAggregate]) -> int:
        """Send one coin's backfill windows; how many were handed over."""
        ...

    def failed(self, coin: str, reason: str, retry_in: float | None) -> None:
        """One coin's backfill failed (`reason`); tried again in `retry_in` s (None: never)."""
        ...

    def round_done(self, coins: int, seconds: float) -> None:
        """Every coin known so far was tried once: the summary line."""
        ...


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds for measuring intervals."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the epoch (for HTTP dates and timestamps)."""
        ...

    def sleep(self, seconds: float) -> bool:
        """Wait; True when a stop was requested (the wait then ends early)."""
        ...

    def stop(self) -> None: ...

    @property
    def stopped(self) -> bool: ...


class SystemClock:
    """The real clock; `stop()` wakes any `sleep()` at once."""

    def __init__(self) -> None:
        self._stop = threading.Event()

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> bool:
        if seconds > 0:
            return self._stop.wait(seconds)
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()


class FakeClock:
    """A clock for tests: `sleep` advances time instantly and records how long it slept."""

    def __init__(self, start: float = 1_732_485_600.0) -> None:
        self._mono = 1000.0
        self._wall = start
        self.sleeps: list[float] = []
        self._stopped = False

    def monotonic(self) -> float:
        return self._mono

    def time(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        self._mono += seconds
        self._wall += seconds

    def sleep(self, seconds: float) -> bool:
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))
        return self._stopped

    def stop(self) -> None:
        self._stopped = True

    @property
    def stopped(self) -> bool:
        return self._stopped


def next_deadline(start: float, interval: float, now: float) -> float:
    """The first scheduled time `start + k * interval` strictly after `now`.

    Cycles that overran are skipped rather than run late, so a slow cycle never drifts
    the schedule: polls stay on the grid laid down at start.
    """
    if now < start:
        return start
    k = math.floor((now - start) / interval) + 1
    return start + k * interval


__all__ = [
    "BackfillSink",
    "Batch",
    "Clock",
    "FakeClock",
    "Source",
    "SystemClock",
    "next_deadline",
]
