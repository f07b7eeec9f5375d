"""Captures: JSON lines of Ticks. `write_capture` records any source; `ReplaySource` plays one back.

Playback keeps the recorded spacing (divided by `speed`; 0 means as fast as possible). With
`retime` the timestamps are shifted so the first tick is "now" (and compressed by `speed`),
so a replay looks live to the windowing job; without it they are replayed as recorded.
Unreadable lines are skipped and counted, never fatal.

A capture of any source, or of several at once (`record --source binance,coinbase`), replays
each tick as recorded but for its time: its own `source`, a trade's `size`, its `quote`. The
replay's status (`replay`) is the one the status topic gets.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from cryptopulse.config import ProducerSettings
from cryptopulse.errors import CryptoPulseError
from cryptopulse.schema import Tick, tick_from_json, tick_to_json
from cryptopulse.sources.base import Batch, Clock, SystemClock

log = logging.getLogger("cryptopulse.sources.replay")

MAX_BATCH = 5000


def read_capture(lines: Iterable[bytes], skipped: Counter[str] | None = None) -> Iterator[Tick]:
    """Ticks from capture lines; blank lines are ignored, bad ones counted as `invalid_line`."""
    for line in lines:
        text = line.strip()
        if not text:
            continue
        try:
            yield tick_from_json(text)
        except ValidationError:
            if skipped is not None:
                skipped["invalid_line"] += 1


class CaptureWriter:
    """Appends Ticks to a capture file, one JSON object per line."""

    def __init__(self, path: Path, *, append: bool = False) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = open(path, "ab" if append else "wb")  # noqa: SIM115
        self.written = 0

    def write(self, ticks: Iterable[Tick]) -> int:
        lines = [tick_to_json(t) + b"\n" for t in ticks]
        self._file.writelines(lines)
        self._file.flush()
        self.written += len(lines)
        return len(lines)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ReplaySource:
    """Plays a capture back at recorded speed, faster, or as fast as possible."""

    name = "replay"

    def __init__(
        self,
        path: Path,
        *,
        speed: float = 1.0,
        retime: bool = True,
        clock: Clock | None = None,
        max_batch: int = MAX_BATCH,
    ) -> None:
        if not path.is_file():
            raise CryptoPulseError(
                f"Capture file {path} does not exist: record one with `cryptopulse record -o {path}`."
            )
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.path = path
        self.speed = speed
        self.retime = retime
        self.clock: Clock = clock or SystemClock()
        self.max_batch = max_batch
        self.skipped: Counter[str] = Counter()

    @classmethod
    def from_settings(
        cls, settings: ProducerSettings, *, clock: Clock | None = None
    ) -> ReplaySource:
        if settings.replay_file is None:
            raise CryptoPulseError(
                "The replay source needs a capture: pass --replay-file or set CRYPTOPULSE_PRODUCER__REPLAY_FILE."
            )
        return cls(
            settings.replay_file,
            speed=settings.replay_speed,
            retime=settings.replay_retime,
            clock=clock,
        )

    def describe(self) -> str:
        speed = "as fast as possible" if self.speed == 0 else f"{self.speed:g}x speed"
        stamps = "retimed to now" if self.retime else "original timestamps"
        return f"capture {self.path} at {speed}, {stamps}"

    def stop(self) -> None:
        self.clock.stop()

    def close(self) -> None:
        pass

    def __iter__(self) -> Iterator[Batch]:
        origin_mono = self.clock.monotonic()
        origin_wall = datetime.fromtimestamp(self.clock.time(), UTC)
        first: datetime | None = None
        pending: list[Tick] = []
        skipped: Counter[str] = Counter()
        cycle = 0
        with open(self.path, "rb") as lines:
            for tick in read_capture(lines, skipped):
                if self.clock.stopped:
                    return
                if first is None:
                    first = tick.timestamp
                offset = (tick.timestamp - first).total_seconds()
                if self.speed > 0:
                    offset /= self.speed
                    due = origin_mono + max(offset, 0.0)
                    wait = due - self.clock.monotonic()
                    if wait > 0:
                        if pending or skipped:
                            cycle += 1
                            yield self._batch(pending, skipped, cycle)
                            pending = []
                        if self.clock.sleep(wait):
                            return
                if self.retime:
                    # Only the time changes: source, size and quote stay as recorded. A tick
                    # older than the first (several sources interleave) keeps its distance.
                    tick = tick.model_copy(
                        update={"timestamp": origin_wall + timedelta(seconds=offset)}
                    )
                pending.append(tick)
                if len(pending) >= self.max_batch:
                    cycle += 1
                    yield self._batch(pending, skipped, cycle)
                    pending = []
        if pending or skipped:
            cycle += 1
            yield self._batch(pending, skipped, cycle)

    def _batch(self, ticks: list[Tick], skipped: Counter[str], cycle: int) -> Batch:
        """A batch with the skips counted since the last one; `skipped` is emptied in place,
        since `read_capture` keeps counting into the same Counter."""
        counted = Counter(skipped)
        skipped.clear()
        self.skipped.update(counted)
        return Batch(ticks, skipped=counted, cycle=cycle)
