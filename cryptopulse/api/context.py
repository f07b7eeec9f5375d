"""Everything one API server holds, built once from the settings: the store, the hub, the
feed, the metrics, the limits and (for replicas and `up`) the Kafka consumer. Routes reach it
through `deps.Ctx`; tests and embedders build independent servers by building new contexts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from cryptopulse.api.admission import Admission
from cryptopulse.api.feed import MarketFeed
from cryptopulse.api.hub import Hub
from cryptopulse.api.kafka_feed import KafkaFeed
from cryptopulse.api.limits import Limits, server_limits
from cryptopulse.api.metrics import ApiMetrics
from cryptopulse.api.store import MarketStore
from cryptopulse.config import ApiSettings, Settings
from cryptopulse.history.service import History


@dataclass(frozen=True)
class ApiContext:
    settings: Settings
    limits: Limits
    metrics: ApiMetrics
    store: MarketStore
    hub: Hub
    feed: MarketFeed
    consumer: KafkaFeed | None
    history: History | None

    @property
    def api(self) -> ApiSettings:
        return self.settings.api

    @property
    def token(self) -> str | None:
        return self.api.token.get_secret_value() if self.api.token is not None else None

    @classmethod
    def build(cls, settings: Settings, limits: Limits | None = None) -> ApiContext:
        """`limits` default to the settings' fitted to this process's open-files limit."""
        api = settings.api
        limits = limits or server_limits(api)
        metrics = ApiMetrics()
        store = MarketStore(
            api.history_per_coin, api.max_coins, timedelta(seconds=api.coin_idle_seconds)
        )
        metrics.series.set_function(lambda: store.series_count)
        hub = Hub(
            metrics=metrics,
            send_timeout=api.send_timeout,
            queue_size=api.client_queue_size,
            max_clients=limits.clients,
            max_per_address=api.max_clients_per_address,
            connects_per_second=api.ws_connects_per_second_per_address,
        )
        admission = Admission.from_settings(settings)
        history = History.open(settings, metrics.history) if settings.history.enabled else None
        feed = MarketFeed(
            store,
            hub,
            metrics,
            api.snapshot_history,
            admission,
            api.snapshot_max_records,
            history=history.writer if history else None,
        )
        consumer = None
        if api.consume_windows:
            consumer = KafkaFeed(
                bootstrap=settings.kafka.bootstrap,
                security=settings.kafka.security,
                topic=settings.kafka.topic_windows,
                on_records=feed.ingest,
                admission=admission,
                status_topic=settings.kafka.topic_status,
                on_statuses=feed.statuses,
                metrics=metrics,
                # as much as the store keeps: a restarted server shows the same history
                replay_seconds=api.history_per_coin * settings.spark.window_seconds,
                replay_records=api.windows_replay,
            )
        return cls(settings, limits, metrics, store, hub, feed, consumer, history)
