"""Prometheus metrics of one API app, in its own registry (tests create many apps)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from cryptopulse.history.writer import HistoryMetrics

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ApiMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.ingests = self._counter(
            "cryptopulse_api_ingests", "Accepted batches of aggregates, by origin.", ["origin"]
        )
        self.records = self._counter(
            "cryptopulse_api_records", "Accepted window aggregates, by origin.", ["origin"]
        )
        self.rejected = self._counter(
            "cryptopulse_api_rejected",
            "Rejected requests or records, by endpoint and reason.",
            ["endpoint", "reason"],
        )
        self.rejected_records = self._counter(
            "cryptopulse_api_rejected_records",
            "Window aggregates refused one by one (the rest of their batch is stored), by origin "
            "and reason: window_order, price_range, window_length, future, too_many_coins (invalid: "
            "Kafka only).",
            ["origin", "reason"],
        )
        self.ingest_seconds = self._histogram(
            "cryptopulse_api_ingest_seconds",
            "Time to validate and store one POST /ingest (the broadcast is not waited for).",
        )
        self.clients = self._gauge("cryptopulse_api_ws_clients", "Connected WebSocket clients.")
        self.ws_connections = self._counter(
            "cryptopulse_api_ws_connections",
            "WebSocket clients registered, by how the server writes to them: direct (frames to "
            "the socket, the fast path) or asgi.",
            ["path"],
        )
        self.dropped = self._counter(
            "cryptopulse_api_ws_dropped",
            "WebSocket clients disconnected by the server, by reason.",
            ["reason"],
        )
        self.refused = self._counter(
            "cryptopulse_api_ws_refused", "WebSocket connections refused, by reason.", ["reason"]
        )
        self.broadcasts = self._counter(
            "cryptopulse_api_broadcasts", "Messages broadcast to WebSocket clients.", ["type"]
        )
        self.broadcast_seconds = self._histogram(
            "cryptopulse_api_broadcast_seconds",
            "Time to serialize one message and hand it to every client.",
        )
        self.connections_refused = self._counter(
            "cryptopulse_api_connections_refused",
            "Connections closed by the server before a request was served, by reason: "
            "max_connections, header_timeout, header_too_large, body_timeout.",
            ["reason"],
        )
        self.series = self._gauge(
            "cryptopulse_api_series", "(source, coin) series held by the store."
        )
        self.evicted = self._counter(
            "cryptopulse_api_series_evicted",
            "Series evicted because no new window came for api.coin_idle_seconds.",
        )
        self.kafka_records = self._counter(
            "cryptopulse_api_kafka_messages",
            "Messages read from the windows topic, by outcome.",
            ["outcome"],
        )
        self.history = HistoryMetrics(self.registry)

    def _counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(name, doc, labels, registry=self.registry)

    def _gauge(self, name: str, doc: str) -> Gauge:
        return Gauge(name, doc, registry=self.registry)

    def _histogram(self, name: str, doc: str) -> Histogram:
        return Histogram(name, doc, buckets=_FAST, registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
