"""Prometheus metrics of one API app, in its own registry (tests create many apps)."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ApiMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.ingests = Counter(
            "cryptopulse_api_ingests",
            "Accepted batches of aggregates, by origin.",
            ["origin"],
            registry=r,
        )
        self.records = Counter(
            "cryptopulse_api_records",
            "Accepted window aggregates, by origin.",
            ["origin"],
            registry=r,
        )
        self.rejected = Counter(
            "cryptopulse_api_rejected",
            "Rejected requests or records, by endpoint and reason.",
            ["endpoint", "reason"],
            registry=r,
        )
        self.rejected_records = Counter(
            "cryptopulse_api_rejected_records",
            "Window aggregates refused one by one (the rest of their batch is stored), by origin "
            "and reason: window_order, price_range, window_length, future (invalid: Kafka only).",
            ["origin", "reason"],
            registry=r,
        )
        self.ingest_seconds = Histogram(
            "cryptopulse_api_ingest_seconds",
            "Time to validate and store one POST /ingest (the broadcast is not waited for).",
            buckets=_FAST,
            registry=r,
        )
        self.clients = Gauge(
            "cryptopulse_api_ws_clients", "Connected WebSocket clients.", registry=r
        )
        self.ws_connections = Counter(
            "cryptopulse_api_ws_connections",
            "WebSocket clients registered, by how the server writes to them: direct (frames to "
            "the socket, the fast path) or asgi.",
            ["path"],
            registry=r,
        )
        self.dropped = Counter(
            "cryptopulse_api_ws_dropped",
            "WebSocket clients disconnected by the server, by reason.",
            ["reason"],
            registry=r,
        )
        self.refused = Counter(
            "cryptopulse_api_ws_refused",
            "WebSocket connections refused, by reason.",
            ["reason"],
            registry=r,
        )
        self.broadcasts = Counter(
            "cryptopulse_api_broadcasts",
            "Messages broadcast to WebSocket clients.",
            ["type"],
            registry=r,
        )
        self.broadcast_seconds = Histogram(
            "cryptopulse_api_broadcast_seconds",
            "Time to serialize one message and hand it to every client.",
            buckets=_FAST,
            registry=r,
        )
        self.connections_refused = Counter(
            "cryptopulse_api_connections_refused",
            "Connections closed by the server before a request was served, by reason: "
            "max_connections, header_timeout, header_too_large, body_timeout.",
            ["reason"],
            registry=r,
        )
        self.series = Gauge(
            "cryptopulse_api_series", "(source, coin) series held by the store.", registry=r
        )
        self.evicted = Counter(
            "cryptopulse_api_series_evicted",
            "Series evicted because no new window came for api.coin_idle_seconds.",
            registry=r,
        )
        self.kafka_records = Counter(
            "cryptopulse_api_kafka_messages",
            "Messages read from the windows topic, by outcome.",
            ["outcome"],
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
