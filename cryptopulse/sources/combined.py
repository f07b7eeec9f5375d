"""Several sources into one producer (`--source binance,coinbase,coingecko`).

Each source runs as it does alone, iterated by a thread of its own (CoinGecko and the simulator
block between polls; an exchange already runs its asyncio client in its own thread), and hands
its batches, tagged with its name (`Batch.source`), to one bounded queue that the producer
iterates. So each keeps its own ticks' `source`, its own status and counters (the producer reads
`Batch.source`), and one that fails (an unreachable exchange) only sends error batches: the
others go on. The queue holds batches, not ticks, so the hand-over costs little per tick; when it
is full, a source's thread waits (an exchange then fills its own bounded inbox, which counts what
it drops).

With CoinGecko among them, the other sources' ticks get the latest CoinGecko market cap of
their coin (`market_caps.MarketCaps`).

Lifecycle: iterating starts the threads; `stop()` stops every source and ends the iteration
(batches already queued are still handed over); `close()` also waits for the threads and closes
each source. A source that ends by itself (a bounded simulation) leaves the others running; a
source that crashes (a bug, not a server's doing) stops them all and the iteration raises, as
that source alone would.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from cryptopulse.sources.base import BackfillSink, Batch, Source
from cryptopulse.sources.market_caps import CAP_SOURCE, MarketCaps

log = logging.getLogger("cryptopulse.sources.combined")

QUEUE_BATCHES = 256  # an exchange hands over 4 batches a second: a minute of every source


class CombinedSource:
    def __init__(self, sources: Sequence[Source], *, max_batches: int = QUEUE_BATCHES) -> None:
        names = tuple(source.name for source in sources)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"several distinct sources are needed, not {names!r}")
        self.sources = list(sources)
        self.names = names
        self.name = ",".join(names)
        self.caps = MarketCaps() if CAP_SOURCE in names else None
        self._queue: queue.Queue[tuple[str, Batch | None]] = queue.Queue(max_batches)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.crashed: dict[str, BaseException] = {}

    def describe(self) -> str:
        parts = []
        for source in self.sources:
            describe = getattr(source, "describe", None)
            parts.append(f"{source.name}: {describe() if describe else source.name}")
        return f"{len(parts)} sources — " + "; ".join(parts)

    def backfill_to(self, sink: BackfillSink, *, window_seconds: float, retry: float) -> None:
        """Hand the backfill sink to the sources that have a past (CoinGecko, simulated)."""
        for source in self.sources:
            backfill: Any = getattr(source, "backfill_to", None)
            if backfill is not None:
                backfill(sink, window_seconds=window_seconds, retry=retry)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start one thread per source (iterating starts them too)."""
        if self._threads:
            return
        for source in self.sources:
            thread = threading.Thread(
                target=self._pump, args=(source,), name=f"{source.name}-source", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for source in self.sources:
            source.stop()

    def close(self) -> None:
        self.stop()
        for thread in self._threads:
            thread.join(5)
            if thread.is_alive():
                log.warning("%s did not end within 5 s", thread.name)
        for source in self.sources:
            source.close()

    def __enter__(self) -> CombinedSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    # -- the batches ---------------------------------------------------------------------

    def __iter__(self) -> Iterator[Batch]:
        self.start()
        active = set(self.names)
        while active:
            try:
                name, batch = self._queue.get(timeout=0 if self._stop.is_set() else 0.5)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            if batch is None:  # that source ended
                active.discard(name)
                crash = self.crashed.get(name)
                if crash is not None:
                    self.stop()
                    raise RuntimeError(f"source {name} failed: {crash!r}") from crash
                continue
            yield self._with_caps(name, batch)

    def _with_caps(self, name: str, batch: Batch) -> Batch:
        if self.caps is not None:
            if name == CAP_SOURCE:
                self.caps.observe(batch.ticks)
            else:
                batch.ticks = self.caps.fill(batch.ticks)
        return batch

    # -- each source's thread ------------------------------------------------------------

    def _pump(self, source: Source) -> None:
        try:
            for batch in source:
                batch.source = source.name
                if not self._put((source.name, batch)):
                    return
        except BaseException as exc:  # a bug in that source: the iterator re-raises it
            if not self._stop.is_set():
                log.exception("source %s failed", source.name)
                self.crashed[source.name] = exc
        self._put((source.name, None))

    def _put(self, item: tuple[str, Batch | None]) -> bool:
        """Queue `item`, waiting for room; False once stopped (nobody takes it any more)."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False
