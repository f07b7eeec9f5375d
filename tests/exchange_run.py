"""What the exchange streams' integration tests share: a source published by a real producer."""

from __future__ import annotations

import threading
from collections.abc import Callable

from cryptopulse.producer import Runner, StatusReporter, TickProducer, publish_source
from cryptopulse.schema import SourceState, SourceStatus
from cryptopulse.sources.exchanges import ExchangeSource
from cryptopulse.status import StatusTracker


class Run:
    """An exchange source and a producer running in a thread, as `produce` runs them; the
    statuses recorded as they are sent."""

    def __init__(self, source: ExchangeSource, producer: TickProducer) -> None:
        self.source = source
        self.producer = producer
        self.statuses: list[SourceStatus] = []
        self.reporter = StatusReporter(
            StatusTracker(source.name, unreachable_after=60.0), self._status, interval=60.0
        )
        self.runner: Runner = publish_source(source, producer, status=self.reporter)
        self._thread = threading.Thread(target=self.runner.run, daemon=True)

    def _status(self, status: SourceStatus) -> None:
        self.statuses.append(status)
        self.producer.publish_status(status)

    def start(self) -> Run:
        self.producer.start()
        self.reporter.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self.runner.stop()
        self._thread.join(10)
        assert not self._thread.is_alive(), "the runner did not stop"
        self.reporter.stop()
        self.source.close()
        assert not self.source.running, "the stream thread did not stop"
        assert self.producer.stop() == 0

    @property
    def states(self) -> list[SourceState]:
        """The states in the order they were published, repeats folded."""
        states: list[SourceState] = []
        for status in self.statuses:
            if not states or states[-1] != status.state:
                states.append(status.state)
        return states

    @property
    def sent(self) -> int:
        return self.producer.metrics.sent

    def sent_more(self, than: int, by: int = 10) -> Callable[[], bool]:
        return lambda: self.sent >= than + by
