"""When to reconnect and how fast to send: pure, with time passed in, so every rule is tested
with a fake clock.

`Backoff` spaces reconnects (exponential with jitter, so many clients that lost the same server
do not come back in step); `SlidingLimit` keeps a count of events inside any period (Binance:
5 messages a second per connection, 300 connection attempts per 5 minutes per address).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable


class Backoff:
    """Reconnect delays: the n-th failure in a row waits a uniform time in [d/2, d] with
    d = min(maximum, initial * 2**n) ("equal jitter": never less than half, never in step)."""

    def __init__(
        self, initial: float, maximum: float, rand: Callable[[], float] = random.random
    ) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError("backoff needs 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
        self.rand = rand
        self.failures = 0

    def ceiling(self) -> float:
        """The longest the next delay can be."""
        return min(self.maximum, self.initial * 2.0 ** min(self.failures, 62))

    def next(self) -> float:
        top = self.ceiling()
        self.failures += 1
        return top / 2 + top / 2 * self.rand()

    def reset(self) -> None:
        """A connection worked: the next failure starts from `initial` again."""
        self.failures = 0


class SlidingLimit:
    """At most `count` events in any `period` seconds."""

    def __init__(self, count: int, period: float) -> None:
        if count < 1 or period <= 0:
            raise ValueError("a limit needs count >= 1 and period > 0")
        self.count = count
        self.period = period
        self._times: deque[float] = deque()

    def wait(self, now: float) -> float:
        """Seconds to wait from `now` before the next event is allowed (0: at once)."""
        times = self._times
        while times and times[0] <= now - self.period:
            times.popleft()
        if len(times) < self.count:
            return 0.0
        return times[0] + self.period - now

    def record(self, now: float) -> None:
        self._times.append(now)
