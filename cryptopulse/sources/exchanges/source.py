"""An exchange's streams as a `Source`: an asyncio client in a thread, batches handed over.

The thread runs one `StreamConnection` per group of subscriptions the protocol asks for (Binance:
at most 1,024 streams a connection), all sharing one connection budget. The iterator takes what
the connections put in the `Inbox` every `flush_interval` seconds and yields it as `Batch`es:
ticks, the skipped frames by reason, and a batch with an `error` for each failed connection, so
the producer's status reads `connecting` until the first tick, then `live`, `degraded` while a
connection is down, `unreachable` when it stays down. `stop()` ends the iteration at once (what
arrived is still handed over); `close()` also waits for the thread to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Callable, Iterator

from cryptopulse.sources.base import Batch
from cryptopulse.sources.exchanges.inbox import Inbox
from cryptopulse.sources.exchanges.pacing import SlidingLimit
from cryptopulse.sources.exchanges.protocol import ExchangeProtocol
from cryptopulse.sources.exchanges.stream import StreamConnection, StreamRules

log = logging.getLogger("cryptopulse.sources.exchanges")

BUDGET_PERIOD = 300.0  # connection attempts are limited per 5 minutes


class ExchangeSource:
    def __init__(
        self,
        protocol: ExchangeProtocol,
        rules: StreamRules | None = None,
        *,
        flush_interval: float = 0.25,
        max_queue: int = 100_000,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.protocol = protocol
        self.name = protocol.name
        self.rules = rules or StreamRules()
        self.flush_interval = flush_interval
        self.inbox = Inbox(max_queue)
        budget = SlidingLimit(protocol.connections_per_5_minutes, BUDGET_PERIOD)
        groups = protocol.connections()
        self.connections = [
            StreamConnection(
                protocol,
                group,
                self.rules,
                self.inbox,
                budget,
                label=f"{protocol.name} {i + 1}/{len(groups)}" if len(groups) > 1 else "",
                rand=rand,
            )
            for i, group in enumerate(groups)
        ]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._started = threading.Event()
        self.crashed: BaseException | None = None
        self.cycles = 0

    def describe(self) -> str:
        return self.protocol.describe()

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the connections' thread (iterating starts it too)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-stream", daemon=True)
        self._thread.start()
        self._started.wait(5)

    def stop(self) -> None:
        self._stop.set()
        loop, main = self._loop, self._main
        if loop is not None and main is not None:
            # A closed loop (RuntimeError) means the thread is done already.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(main.cancel)
        self.inbox.wake()

    def close(self) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join(5)
            if self._thread.is_alive():
                log.warning("%s: the stream thread did not end within 5 s", self.name)

    def __enter__(self) -> ExchangeSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the batches ---------------------------------------------------------------------

    def __iter__(self) -> Iterator[Batch]:
        self.start()
        log.info("streaming %s", self.describe())
        while True:
            stopping = self._stop.is_set() or not self.running
            for batch in self.inbox.take(0 if stopping else self.flush_interval):
                self.cycles += 1
                batch.cycle = self.cycles
                yield batch
            if stopping:
                break
        if self.crashed is not None and not self._stop.is_set():
            raise RuntimeError(f"{self.name} stream failed: {self.crashed!r}") from self.crashed

    # -- the thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._all())
        except BaseException as exc:  # a bug, not a server's doing: the iterator re-raises it
            if not self._stop.is_set():
                log.exception("%s: the stream thread failed", self.name)
                self.crashed = exc
        finally:
            self._started.set()
            self.inbox.wake()

    async def _all(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._main = asyncio.current_task()
        self._started.set()
        if self._stop.is_set():
            return
        try:
            async with asyncio.TaskGroup() as group:
                for connection in self.connections:
                    group.create_task(connection.run())
        except asyncio.CancelledError:
            if not self._stop.is_set():
                raise
