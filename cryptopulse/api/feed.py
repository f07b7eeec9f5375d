"""Where aggregates enter the server: from POST /ingest or from the windows topic.

Both go through `MarketFeed.ingest`: store first (so reads right after see it), then
a broadcast is queued (so the caller never waits for clients). Runs on the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptopulse.api.hub import Hub, Outgoing, encode, encode_status
from cryptopulse.api.metrics import ApiMetrics
from cryptopulse.api.store import MarketStore
from cryptopulse.schema import SourceStatusMessage, WindowAggregate


class MarketFeed:
    def __init__(
        self, store: MarketStore, hub: Hub, metrics: ApiMetrics, snapshot_history: int
    ) -> None:
        self.store = store
        self.hub = hub
        self.metrics = metrics
        self.snapshot_history = snapshot_history
        self._snapshot: tuple[int, Outgoing] | None = None

    def ingest(self, records: Sequence[WindowAggregate], origin: str) -> int:
        """Store and broadcast a batch; return how many records were kept."""
        kept = self.store.apply(records)
        self.metrics.ingests.labels(origin).inc()
        self.metrics.records.labels(origin).inc(len(records))
        if kept:
            self.hub.publish(self.store.version, records)
        return kept

    def set_source_status(self, status: SourceStatusMessage) -> None:
        self.store.set_source_status(status)
        self.hub.publish_status(self.store.version, status)

    def welcome(self) -> tuple[list[Outgoing], int]:
        """The messages a new client gets first (snapshot, then source status) and their version."""
        version = self.store.version
        if self._snapshot is None or self._snapshot[0] != version:
            payload = encode("snapshot", self.store.snapshot(self.snapshot_history))
            self._snapshot = (version, Outgoing("snapshot", payload, version))
        messages = [self._snapshot[1]]
        status = self.store.source_status
        if status is not None:
            messages.append(Outgoing("source_status", encode_status(status), version))
        return messages, version
