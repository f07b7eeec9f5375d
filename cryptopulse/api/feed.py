"""Where data enters the server: aggregates from POST /ingest or the windows topic, source
statuses from the status topic.

Everything goes through `MarketFeed`: store first (so reads right after see it), then a
broadcast is queued (so the caller never waits for clients), then final windows are queued for
the history database (its writer thread writes them). Backfilled windows (`kind="backfill"`,
a source's past) go to the history only: never into the live store, never broadcast. Runs on
the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from cryptopulse.api.admission import Admission, Verdict
from cryptopulse.api.hub import Hub, Outgoing, encode_record, encode_status, envelope
from cryptopulse.api.metrics import ApiMetrics
from cryptopulse.api.store import Applied, MarketStore
from cryptopulse.history.writer import HistoryWriter
from cryptopulse.schema import SourceStatus, SourceStatusMessage, WindowAggregate

TOO_MANY_COINS = "too_many_coins"
"""Why a record of a new coin is refused when the store holds `api.max_coins` series."""


class MarketFeed:
    def __init__(
        self,
        store: MarketStore,
        hub: Hub,
        metrics: ApiMetrics,
        snapshot_history: int,
        admission: Admission | None = None,
        snapshot_max_records: int | None = None,
        history: HistoryWriter | None = None,
    ) -> None:
        self.store = store
        self.hub = hub
        self.metrics = metrics
        self.snapshot_history = snapshot_history
        self.snapshot_max_records = snapshot_max_records
        self.admission = admission
        self._snapshot: tuple[int, Outgoing] | None = None
        self.history = history

    def ingest(
        self, records: Sequence[WindowAggregate], origin: str, now: datetime | None = None
    ) -> Applied:
        """Store and broadcast a batch; records of new coins beyond the store's limit are
        refused and counted (`too_many_coins`)."""
        live, backfill = _split(records)
        evicted = self.store.evicted
        applied = self.store.apply(live, now or datetime.now(UTC)) if live else Applied()
        if self.store.evicted > evicted:
            self.metrics.evicted.inc(self.store.evicted - evicted)
        self.metrics.ingests.labels(origin).inc()
        self.metrics.records.labels(origin).inc(len(records) - applied.refused)
        if applied.refused:
            self.metrics.rejected_records.labels(origin, TOO_MANY_COINS).inc(applied.refused)
        if applied.changed:
            self.hub.publish(self.store.version, applied.changed)
        if self.history is not None:
            # only what changed the store: a final arriving by POST and from Kafka is written once
            self.history.submit([r for r in applied.changed if r.final] + backfill)
        return applied

    def admit(self, records: Sequence[WindowAggregate], origin: str, now: datetime) -> Verdict:
        """Store and broadcast the records that pass admission; count the others by reason."""
        if self.admission is None:
            verdict = Verdict(accepted=list(records))
        else:
            verdict = self.admission.split(records, now)
        self.count_rejected(verdict.reasons, origin)
        if verdict.accepted:
            refused = self.ingest(verdict.accepted, origin, now).refused
            if refused:  # counted by ingest()
                verdict.reasons[TOO_MANY_COINS] += refused
        return verdict

    def count_rejected(self, reasons: dict[str, int], origin: str) -> None:
        for reason, count in reasons.items():
            self.metrics.rejected_records.labels(origin, reason).inc(count)

    def statuses(self, statuses: Sequence[SourceStatus], _origin: str = "kafka") -> None:
        """Keep the newest status of each source; broadcast the whole list when it changed."""
        if any([self.store.set_status(s) for s in statuses]):
            self.hub.publish_status(self.store.version, self.status_message())

    def status_message(self) -> SourceStatusMessage:
        return SourceStatusMessage(
            data=[self.store.statuses[s] for s in sorted(self.store.statuses)]
        )

    def welcome(self) -> tuple[list[Outgoing], int]:
        """The messages a new client gets first (snapshot, then source statuses) and their version."""
        version = self.store.version
        if self._snapshot is None or self._snapshot[0] != version:
            records = self.store.snapshot_json(
                self.snapshot_history, encode_record, self.snapshot_max_records
            )
            payload = envelope("snapshot", records)
            self._snapshot = (version, Outgoing("snapshot", payload, version))
        messages = [self._snapshot[1]]
        if self.store.statuses:
            messages.append(
                Outgoing("source_status", encode_status(self.status_message()), version)
            )
        return messages, version


def _split(
    records: Sequence[WindowAggregate],
) -> tuple[Sequence[WindowAggregate], list[WindowAggregate]]:
    """(live windows, backfilled windows); the common all-live batch is not copied."""
    if all(r.kind == "live" for r in records):
        return records, []
    return [r for r in records if r.kind == "live"], [r for r in records if r.kind != "live"]
