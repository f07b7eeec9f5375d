"""The hand-over from the stream thread (asyncio) to the source's iterator (the producer's thread).

Ticks, skip reasons and failures arrive in order and leave as `Batch`es: a failure closes the
batch before it, so a status read from the batches follows what happened. Bounded: past
`max_ticks` waiting, new ticks are dropped and counted (`queue_full`), never held without end.
"""

from __future__ import annotations

import threading

from cryptopulse.schema import Tick
from cryptopulse.sources.base import Batch


class Inbox:
    def __init__(self, max_ticks: int) -> None:
        self.max_ticks = max_ticks
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._current = Batch([])
        self._done: list[Batch] = []
        self._held = 0

    def tick(self, tick: Tick) -> None:
        with self._lock:
            if self._held >= self.max_ticks:
                self._current.skipped["queue_full"] += 1
                return
            self._current.ticks.append(tick)
            self._held += 1

    def count(self, reason: str, n: int = 1) -> None:
        with self._lock:
            self._current.skipped[reason] += n

    def failure(self, reason: str) -> None:
        """The stream failed (`reason`): an error batch, after the ticks received before it.
        Skips not yet handed over go with the error, never in a batch of their own (a batch
        without an error reads as a good one)."""
        with self._lock:
            current = self._current
            error = Batch([], error=reason)
            if current.ticks:
                self._done.append(current)
            else:
                error.skipped = current.skipped
            self._done.append(error)
            self._current = Batch([])
        self._ready.set()

    def wake(self) -> None:
        self._ready.set()

    def take(self, timeout: float) -> list[Batch]:
        """What arrived, as batches (waits up to `timeout` for a failure or a wake-up first).
        Skips without ticks wait for the next batch with ticks or an error."""
        self._ready.wait(timeout)
        self._ready.clear()
        with self._lock:
            out, self._done = self._done, []
            if self._current.ticks:
                out.append(self._current)
                self._current = Batch([])
            self._held = 0
        return out
