"""All settings, in one typed object.

Sources, highest priority first: constructor arguments, environment variables
`CRYPTOPULSE_*` (nested with `__`, e.g. `CRYPTOPULSE_KAFKA__PORT=9093`), a TOML file
(`cryptopulse.toml` in the working directory, or the path in `CRYPTOPULSE_CONFIG`),
then the defaults below.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from cryptopulse.coins import DEFAULT_COINS

PROJECT_ROOT = Path(__file__).resolve().parent.parent

Port = Annotated[int, Field(ge=1, le=65535)]
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")


def _url_host(host: str) -> str:
    """A host as written in a URL or a Host header: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host.lower()


Seconds = Annotated[float, Field(gt=0)]


def secret_safe_url(url: str) -> bool:
    """True when a secret sent to `url` stays encrypted or on this machine: `https`, or plain
    `http` to a loopback address (127.0.0.0/8, ::1, localhost), which never crosses a network."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme == "https":
        return True
    if scheme != "http" or not parts.hostname:
        return False
    if parts.hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


class KafkaSecurity(BaseModel):
    """How clients authenticate to and encrypt traffic with a Kafka cluster (producer, Spark job
    and API consumer alike). The local broker `up` starts is plaintext on loopback; these settings
    are for an existing cluster (`kafka.bootstrap_servers`)."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="Kafka `security.protocol`."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_file: Path | None = Field(
        default=None,
        description="PEM file of the CA that signed the brokers' certificates (default: system CAs).",
    )
    ssl_check_hostname: bool = Field(
        default=True, description="Check that a broker's certificate names the host connected to."
    )

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @model_validator(mode="after")
    def _complete(self) -> KafkaSecurity:
        if self.sasl and (not self.sasl_username or self.sasl_password is None):
            raise ValueError(
                f"kafka.security.protocol is {self.protocol}: set kafka.security.sasl_username and "
                "kafka.security.sasl_password (CRYPTOPULSE_KAFKA__SECURITY__SASL_USERNAME / "
                "__SASL_PASSWORD)"
            )
        if self.ssl_ca_file is not None and not self.tls:
            raise ValueError(
                "kafka.security.ssl_ca_file is set but the protocol is "
                f"{self.protocol}: use SSL or SASL_SSL"
            )
        return self


class KafkaSettings(BaseModel):
    bootstrap_servers: str = Field(
        default="",
        description="An existing cluster to use instead of the local broker (host:port,...).",
    )
    host: str = "127.0.0.1"
    port: Port = 9092
    controller_port: Port = 9093
    topic_ticks: str = "crypto_market_data"
    topic_windows: str = "crypto_market_windows"
    topic_dlq: str = "crypto_market_data_dlq"
    topic_status: str = Field(
        default="crypto_market_status",
        description="Compacted; key = source, value = its latest SourceStatus.",
    )
    ticks_max_message_bytes: Annotated[int, Field(ge=16 * 1024)] = Field(
        default=256 * 1024,
        description="The ticks topic's max.message.bytes (a record batch); a tick is < 1 KiB.",
    )
    partitions: Annotated[int, Field(ge=1)] = 3
    replication_factor: Annotated[int, Field(ge=1)] = 1
    heap: str = Field(default="512m", description="Broker JVM heap (-Xmx).")
    start_timeout: Seconds = 90.0
    security: KafkaSecurity = Field(default_factory=KafkaSecurity)

    @model_validator(mode="after")
    def _security_needs_a_cluster(self) -> KafkaSettings:
        if self.managed and self.security.protocol != "PLAINTEXT":
            raise ValueError(
                f"kafka.security.protocol is {self.security.protocol} but no cluster is named: the "
                "local broker is plaintext on loopback. Set kafka.bootstrap_servers "
                "(CRYPTOPULSE_KAFKA__BOOTSTRAP_SERVERS) to the secured cluster."
            )
        return self

    @property
    def managed(self) -> bool:
        """True when CryptoPulse runs its own local broker."""
        return not self.bootstrap_servers

    @property
    def bootstrap(self) -> str:
        return self.bootstrap_servers or f"{self.host}:{self.port}"

    @property
    def topics(self) -> tuple[str, ...]:
        return (self.topic_ticks, self.topic_windows, self.topic_dlq, self.topic_status)

    def topic_configs(self) -> dict[str, dict[str, str]]:
        """Per-topic settings applied when the topics are created."""
        return {
            self.topic_ticks: {"max.message.bytes": str(self.ticks_max_message_bytes)},
            self.topic_status: {"cleanup.policy": "compact", "segment.ms": "3600000"},
        }


class ClusterSettings(BaseModel):
    """`cryptopulse cluster` (development and tests): on this machine, a 3-node KRaft Kafka
    cluster, a Spark standalone master with 2 workers, and 2 API replicas."""

    kafka_ports: tuple[Port, Port, Port] = (19092, 19094, 19096)
    kafka_controller_ports: tuple[Port, Port, Port] = (19093, 19095, 19097)
    kafka_heap: str = Field(default="384m", description="Each node's JVM heap (-Xmx).")
    spark_master_port: Port = 17077
    spark_master_ui_port: Port = Field(
        default=18080, description="The master's web UI; its /json/ is how readiness is read."
    )
    spark_worker_ui_ports: tuple[Port, Port] = (18081, 18082)
    spark_worker_cores: Annotated[int, Field(ge=1)] = 1
    spark_worker_memory: str = Field(
        default="1g", description="What each worker offers executors (spark.executor.memory fits)."
    )
    api_ports: tuple[Port, Port] = (8001, 8002)

    @model_validator(mode="after")
    def _ports_differ(self) -> ClusterSettings:
        ports = (
            *self.kafka_ports,
            *self.kafka_controller_ports,
            self.spark_master_port,
            self.spark_master_ui_port,
            *self.spark_worker_ui_ports,
            *self.api_ports,
        )
        if len(set(ports)) != len(ports):
            raise ValueError(f"cluster: its ports must all differ, got {ports}")
        return self


class SparkSettings(BaseModel):
    master: str = Field(default="local[*]", description="Spark master URL, e.g. spark://host:7077.")
    shuffle_partitions: Annotated[int, Field(ge=1)] = Field(
        default=2, description="Partitions of each batch's aggregation; one per core is plenty."
    )
    driver_memory: str = "2g"
    window_seconds: Seconds = 30.0
    watermark_seconds: Annotated[float, Field(ge=0)] = 5.0
    trigger_seconds: Seconds = 1.0
    max_offsets_per_trigger: Annotated[int, Field(ge=0)] = 0
    max_future_seconds: Seconds = Field(
        default=300.0,
        description="Ticks stamped further ahead of their Kafka time are dead letters.",
    )
    starting_offsets: Literal["earliest", "latest"] = "latest"
    checkpoint_location: str = Field(
        default="",
        description=(
            "Where the job keeps its checkpoint and its sinks' bookkeeping: a folder, or a "
            "Hadoop URL (hdfs://namenode/cryptopulse, s3a://bucket/cryptopulse) that every "
            "executor and any host a restarted driver runs on can reach. Default: "
            "<data>/checkpoints."
        ),
    )
    post_to_api: bool = Field(default=True, description="POST each batch to the API's /ingest.")
    post_retry_seconds: Seconds = Field(
        default=10.0, description="How long a batch's POST is retried before it is given up."
    )
    log_level: str = "WARN"
    conf: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Extra Spark configuration (`spark.*` keys), applied last: e.g. "
            '`CRYPTOPULSE_SPARK__CONF=\'{"spark.locality.wait": "0"}\'`.'
        ),
    )


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: Port = 8000
    token: SecretStr | None = Field(
        default=None,
        description=(
            "Bearer token required by /ingest (`cryptopulse up` generates one in "
            "<data>/secrets/ingest-token when unset)."
        ),
    )
    protect_reads: bool = Field(
        default=False,
        description="Also require the token for /api/* and /ws (the dashboard page stays public).",
    )
    ingest_url: str = Field(
        default="", description="Where the stream job POSTs; default is this server."
    )
    max_body_bytes: Annotated[int, Field(ge=1024)] = 1024 * 1024
    max_future_seconds: Annotated[float, Field(ge=0)] = Field(
        default=300.0,
        description="Windows starting further ahead of this server's clock are rejected.",
    )
    send_timeout: Seconds = 2.0
    client_queue_size: Annotated[int, Field(ge=1)] = 64
    max_clients: Annotated[int, Field(ge=1)] = Field(
        default=20_000,
        description=(
            "WebSocket clients at once; lowered at start to fit `max_connections` and the "
            "open-files limit."
        ),
    )
    max_clients_per_address: Annotated[int, Field(ge=1)] = Field(
        default=256,
        description="WebSocket clients from one address (behind a proxy, all share its address).",
    )
    max_connections: Annotated[int, Field(ge=16)] = Field(
        default=25_000,
        description=(
            "Open connections (HTTP and WebSocket); more are closed at once. Lowered at start "
            "below the process's open-files limit."
        ),
    )
    max_requests: Annotated[int, Field(ge=1)] = Field(
        default=1_000, description="HTTP requests handled at once; more get 503."
    )
    header_timeout: Seconds = Field(
        default=10.0, description="Time a connection has to send a request's headers."
    )
    body_timeout: Seconds = Field(
        default=30.0, description="Time a request has to send its whole body."
    )
    max_header_bytes: Annotated[int, Field(ge=4096)] = Field(
        default=32 * 1024, description="Largest request line and headers."
    )
    max_coins: Annotated[int, Field(ge=1)] = Field(
        default=5_000,
        description=(
            "Series kept ((source, coin) pairs); windows of new coins beyond it are rejected "
            "(reason `too_many_coins`). Memory is bounded by max_coins × history_per_coin windows."
        ),
    )
    coin_idle_seconds: Seconds = Field(
        default=6 * 3600.0,
        description="A series with no new window for this long (event time) is evicted.",
    )
    snapshot_max_records: Annotated[int, Field(ge=1)] = Field(
        default=20_000,
        description="Most windows in a new client's snapshot (history per coin is cut to fit).",
    )
    ws_connects_per_second_per_address: Annotated[float, Field(gt=0)] = Field(
        default=20.0,
        description=(
            "New WebSocket clients one address may open per second (bursts: 5 s worth); more "
            "are refused (close 1013) before their snapshot is sent."
        ),
    )
    ws_messages_per_second: Annotated[float, Field(gt=0)] = Field(
        default=10.0,
        description="Frames a WebSocket client may send per second (burst: 4 s worth); more close it.",
    )
    ws_max_message_bytes: Annotated[int, Field(ge=125)] = Field(
        default=4096, description="Largest message a WebSocket client may send."
    )
    websocket_writes: Literal["direct", "asgi"] = Field(
        default="direct",
        description=(
            "direct: the hub writes each broadcast's frame straight to every socket (fast); "
            "asgi: plain ASGI sends (uvicorn's stock protocol; for comparison)."
        ),
    )
    ping_interval: Seconds = 20.0
    history_per_coin: Annotated[int, Field(ge=1)] = 240
    allowed_hosts: list[str] = Field(
        default_factory=lambda: list(LOOPBACK_HOSTS),
        description=(
            "Host header values served (DNS rebinding defence): a name matches any port, "
            "`name:port` only that port, `*` any host. `host` is always added."
        ),
    )
    cors_origins: list[str] | None = Field(
        default=None,
        description=(
            "Origins whose pages may open /ws and call the API (exact `scheme://host[:port]`, "
            "or `*`). Default: this server's own origin under its loopback names "
            "(http://127.0.0.1:PORT, http://localhost:PORT, …) and the Vite dev server."
        ),
    )
    docs: bool = Field(
        default=False,
        description="Serve /docs (Swagger UI) and /redoc; their pages load scripts from a CDN.",
    )
    consume_windows: bool = Field(
        default=False,
        description=(
            "Take aggregates (and source status) from Kafka: replicas, and the API `up` starts, "
            "which rebuilds its history from the windows topic when it restarts."
        ),
    )
    ingest_enabled: bool = Field(
        default=True,
        description="Serve POST /ingest; turn off for a replica that only consumes Kafka.",
    )
    windows_replay: Annotated[int, Field(ge=0)] = Field(
        default=100_000,
        description=(
            "On start, the windows topic is read back over the span the history keeps "
            "(history_per_coin windows), at most this many records per partition."
        ),
    )
    ping_timeout: Seconds = 20.0
    snapshot_history: Annotated[int, Field(ge=1)] = Field(
        default=60, description="Windows per coin sent to a new WebSocket client."
    )
    web_dist: Path = Field(
        default=PROJECT_ROOT / "web" / "dist", description="The built dashboard served at /."
    )

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ingest(self) -> str:
        return self.ingest_url or f"{self.base_url}/ingest"

    @property
    def hosts(self) -> list[str]:
        """The Host allow-list in force: `allowed_hosts` plus the address the server binds (the
        stream job posts to `base_url`, even when that is 0.0.0.0)."""
        hosts = list(self.allowed_hosts)
        name = _url_host(self.host)
        if name not in hosts:
            hosts.append(name)
        return hosts

    @property
    def origins(self) -> list[str]:
        """The Origin allow-list in force: `cors_origins`, or by default this server's own."""
        if self.cors_origins is not None:
            return list(self.cors_origins)
        names = [] if self.host in WILDCARD_ADDRESSES else [_url_host(self.host)]
        names += [n for n in ("127.0.0.1", "localhost", "[::1]") if n not in names]
        own = [f"http://{name}:{self.port}" for name in names]
        return [*own, "http://localhost:5173", "http://127.0.0.1:5173"]  # `npm run dev`


class HistorySettings(BaseModel):
    """The API server's history database: every final window, kept `retention_days`."""

    enabled: bool = Field(default=True, description="Store final windows and serve /api/history.")
    path: Path | None = Field(
        default=None,
        description=(
            "The SQLite file (WAL mode). Default: `history/api-<port>.sqlite3` under the data "
            "folder, so each API server (replicas included) keeps its own."
        ),
    )
    retention_days: Annotated[float, Field(gt=0)] = Field(
        default=30.0, description="Windows older than this (by window start) are deleted."
    )
    cleanup_interval: Seconds = Field(
        default=3600.0, description="How often the retention cleanup runs."
    )
    batch_max: Annotated[int, Field(ge=1)] = Field(
        default=5000, description="Most windows written in one transaction."
    )
    queue_max: Annotated[int, Field(ge=1)] = Field(
        default=200_000,
        description=(
            "Most final windows waiting to be written; past it new ones are dropped and counted "
            "(cryptopulse_history_windows_dropped_total), never blocking the server."
        ),
    )
    max_points: Annotated[int, Field(ge=10, le=100_000)] = Field(
        default=500,
        description="The default interval is the shortest giving at most this many candles.",
    )


class ExchangeStreamSettings(BaseModel):
    """How every exchange's WebSocket stream connects, watches and recovers (`--source binance`)."""

    connect_timeout: Seconds = Field(
        default=10.0, description="Longest wait for a connection's handshake."
    )
    silence_timeout: Seconds = Field(
        default=30.0,
        description="A connection silent this long (no frame at all) is closed and opened again.",
    )
    backoff_initial: Seconds = Field(
        default=1.0, description="First reconnect delay; doubled per failure, with jitter."
    )
    backoff_max: Seconds = Field(default=60.0, description="Longest reconnect delay.")
    max_connection_age: Seconds = Field(
        default=23.5 * 3600,
        description="Reconnect before this (Binance closes a connection at 24 h).",
    )
    max_frame_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=64 * 1024,
        description="Largest frame read; a larger one closes the connection (counted).",
    )
    max_queue: Annotated[int, Field(ge=100)] = Field(
        default=100_000,
        description="Most ticks waiting for the producer; past it new ones are dropped and counted.",
    )
    flush_interval: Seconds = Field(
        default=0.25, description="How often the received ticks are handed over as one batch."
    )

    @model_validator(mode="after")
    def _backoff_order(self) -> ExchangeStreamSettings:
        if self.backoff_max < self.backoff_initial:
            raise ValueError("exchange.backoff_max must be at least exchange.backoff_initial")
        return self


def _websocket_url(url: str) -> str:
    if urlsplit(url).scheme not in ("ws", "wss") or not urlsplit(url).hostname:
        raise ValueError(f"not a WebSocket URL (ws:// or wss://): {url!r}")
    return url.rstrip("/")


class BinanceSettings(BaseModel):
    """Binance spot public streams: no key; the rules are Binance's (WebSocket Streams docs)."""

    ws_url: Annotated[str, AfterValidator(_websocket_url)] = Field(
        default="wss://stream.binance.com:9443",
        description="The streams' base URL (combined streams are read from <ws_url>/stream).",
    )
    trades: Literal["trade", "aggTrade"] = Field(
        default="trade",
        description="Trade stream: every trade, or trades aggregated per taker order.",
    )
    ticker: Literal["miniTicker", "ticker"] = Field(
        default="miniTicker", description="24 h figures, once a second per symbol."
    )
    max_streams_per_connection: Annotated[int, Field(ge=1, le=1024)] = Field(
        default=1024, description="Binance allows 1,024; more streams open more connections."
    )
    messages_per_second: Annotated[float, Field(ge=1, le=5)] = Field(
        default=4.0,
        description=(
            "Messages sent per connection per second (Binance disconnects past 5, pongs "
            "included, so one is left for them)."
        ),
    )
    connections_per_5_minutes: Annotated[int, Field(ge=1, le=300)] = Field(
        default=300, description="Connection attempts per 5 minutes (Binance's limit per IP)."
    )


class CoinbaseSettings(BaseModel):
    """Coinbase Advanced Trade public market data: no key for `market_trades`, `ticker` and
    `heartbeats`; the rules are Coinbase's (Advanced Trade WebSocket docs)."""

    ws_url: Annotated[str, AfterValidator(_websocket_url)] = Field(
        default="wss://advanced-trade-ws.coinbase.com",
        description="The market data endpoint.",
    )
    ticker: Literal["ticker", "ticker_batch"] = Field(
        default="ticker",
        description=(
            "24 h figures: on every match, or at most every 5 s (Advanced Trade WebSocket "
            "Channels)."
        ),
    )
    max_products_per_connection: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=100,
        description="Products one connection subscribes; more open more connections.",
    )
    messages_per_second: Annotated[float, Field(ge=1, le=8)] = Field(
        default=4.0,
        description=(
            "Messages sent per connection per second (Advanced Trade WebSocket Rate Limits: 8 "
            "unauthenticated messages a second per IP). The 3 subscribe messages still go "
            "within the 5 s Coinbase allows after connecting (WebSocket Overview)."
        ),
    )
    connections_per_5_minutes: Annotated[int, Field(ge=1, le=300)] = Field(
        default=300,
        description=(
            "Connection attempts per 5 minutes (Coinbase allows 750 a second per IP; a "
            "reconnect storm is held far below it)."
        ),
    )


class KrakenSettings(BaseModel):
    """Kraken WebSocket API v2 public channels (`trade`, `ticker`): no key; Kraken's rules."""

    ws_url: Annotated[str, AfterValidator(_websocket_url)] = Field(
        default="wss://ws.kraken.com/v2", description="The public v2 endpoint."
    )
    connections_per_5_minutes: Annotated[int, Field(ge=1, le=75)] = Field(
        default=75,
        description=(
            "Connection attempts per 5 minutes: half of the about 150 (re)connections per "
            "rolling 10 minutes per IP address that Kraken's WebSocket introduction has given "
            "(not re-checked against the current page)."
        ),
    )
    messages_per_second: Annotated[float, Field(ge=1, le=10)] = Field(
        default=4.0,
        description=(
            "Subscribe messages sent per connection per second (Kraken publishes no figure for "
            "public channels; paced anyway)."
        ),
    )
    symbols_per_message: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=100, description="Symbols in one subscribe message (keeps each message small)."
    )
    max_symbols_per_connection: Annotated[int, Field(ge=1)] = Field(
        default=500, description="More symbols open more connections (our bound, not Kraken's)."
    )


SOURCE_NAMES = ("coingecko", "simulated", "replay", "binance", "coinbase", "kraken")


def parse_sources(value: object) -> str:
    """`binance, coinbase` (or a TOML list) as the canonical `binance,coinbase`: known names,
    each once; `replay` only alone (it plays a capture, which may hold several sources)."""
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    names = [name for item in items if (name := str(item).strip().lower())]
    if not names:
        raise ValueError(f"no source given; choose from {', '.join(SOURCE_NAMES)}")
    for name in names:
        if name not in SOURCE_NAMES:
            raise ValueError(
                f"unknown source {name!r}; choose from {', '.join(SOURCE_NAMES)} "
                "(several at once as a comma list, e.g. binance,coinbase)"
            )
        if names.count(name) > 1:
            raise ValueError(f"source {name!r} is given twice in {','.join(names)!r}")
    if "replay" in names and len(names) > 1:
        raise ValueError(
            "replay runs alone: record the sources together (cryptopulse record --source "
            "binance,coinbase), then replay that capture, which keeps each tick's source"
        )
    return ",".join(names)


class ProducerSettings(BaseModel):
    source: Annotated[str, BeforeValidator(parse_sources)] = Field(
        default="coingecko",
        description=(
            "One source or several as a comma list (binance,coinbase): "
            + ", ".join(SOURCE_NAMES)
            + "; replay only alone."
        ),
    )
    coins: list[str] = Field(default_factory=lambda: list(DEFAULT_COINS))
    poll_interval: Seconds = 30.0
    coingecko_api_key: SecretStr | None = None
    # After the key: its validator sees the key (and reports the URL, never the key).
    coingecko_base_url: str = "https://api.coingecko.com/api/v3"
    coingecko_plan: Literal["demo", "pro"] = "demo"
    coingecko_top: Annotated[int, Field(ge=0, le=20_000)] = Field(
        default=0,
        description="Follow the top N coins by market cap (/coins/markets) instead of `coins`.",
    )
    coingecko_calls_per_minute: Annotated[float, Field(gt=0)] | None = Field(
        default=None,
        description="Request budget; default from the plan (keyless 5, demo 30, pro 500).",
    )
    http_timeout: Seconds = Field(
        default=10.0, description="Longest wait for any one step: connect, send, each read."
    )
    http_deadline: Seconds = Field(
        default=20.0,
        description="Longest one request may take in all, headers and body (then it is cut off).",
    )
    http_max_body_bytes: Annotated[int, Field(ge=64 * 1024)] = Field(
        default=4 * 1024 * 1024,
        description="Largest response body read, counted after decompression (a page is ~300 KB).",
    )
    simulated_coins: Annotated[int, Field(ge=1, le=5000)] = 10
    simulated_rate: Annotated[float, Field(gt=0)] = Field(
        default=1 / 30, description="Ticks per coin per second."
    )
    seed: int = 42
    replay_file: Path | None = None
    replay_speed: Annotated[float, Field(ge=0)] = Field(
        default=1.0,
        description="1 = recorded speed, 10 = ten times faster, 0 = as fast as possible.",
    )
    replay_retime: bool = Field(
        default=True, description="Shift replayed timestamps to now (event time stays live)."
    )
    compression: Literal["lz4", "zstd", "snappy", "gzip", "none"] = "lz4"
    linger_ms: Annotated[int, Field(ge=0)] = 20
    flush_timeout: Seconds = Field(
        default=5.0, description="On stop, how long undelivered ticks may still be sent."
    )
    buffer_seconds: Seconds = Field(
        default=600.0,
        description="How long a tick waits in the producer's buffer while Kafka is away.",
    )
    buffer_messages: Annotated[int, Field(ge=1000)] = Field(
        default=500_000, description="Most ticks buffered while Kafka is away."
    )
    status_interval: Seconds = Field(
        default=10.0, description="The source status is repeated this often (a heartbeat)."
    )
    unreachable_after: Seconds = Field(
        default=300.0,
        description="A source failing this long after its last good fetch is `unreachable`.",
    )
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = Field(
        default=0, description="Serve the producer's Prometheus metrics on this port (0 = off)."
    )
    backfill: bool = Field(
        default=True,
        description=(
            "On start, publish the last 24 h as `backfill` windows (CoinGecko's market_chart, "
            "or the simulator run over the past), so charts are full from the first minute."
        ),
    )
    backfill_retry: Seconds = Field(
        default=600.0, description="A coin whose backfill failed is tried again after this long."
    )
    exchange: ExchangeStreamSettings = Field(default_factory=ExchangeStreamSettings)
    binance: BinanceSettings = Field(default_factory=BinanceSettings)
    coinbase: CoinbaseSettings = Field(default_factory=CoinbaseSettings)
    kraken: KrakenSettings = Field(default_factory=KrakenSettings)

    @field_validator("coingecko_api_key", mode="before")
    @classmethod
    def _strip_key(cls, value: object) -> object:
        """A pasted key's surrounding spaces and newline go (a header cannot carry them).
        Never raises: a validation error would print the key."""
        return (value.strip() or None) if isinstance(value, str) else value

    @field_validator("coingecko_base_url")
    @classmethod
    def _key_needs_https(cls, url: str, info: ValidationInfo) -> str:
        if info.data.get("coingecko_api_key") is not None and not secret_safe_url(url):
            raise ValueError(
                "a CoinGecko API key is set, so the base URL must use https:// (plain http is "
                "only allowed to a loopback address): fix CRYPTOPULSE_PRODUCER__COINGECKO_BASE_URL "
                "or remove the key"
            )
        return url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CRYPTOPULSE_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    data_dir: Path = PROJECT_ROOT / ".cryptopulse"
    vendor_dir: Path = PROJECT_ROOT / "vendor"
    log_level: str = "INFO"
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    producer: ProducerSettings = Field(default_factory=ProducerSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)

    @model_validator(mode="after")
    def _watermark_fits_window(self) -> Settings:
        if self.spark.watermark_seconds > 10 * self.spark.window_seconds:
            raise ValueError("spark.watermark_seconds is more than ten windows; finals would lag")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("CRYPTOPULSE_CONFIG", "cryptopulse.toml"))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file))

    @property
    def kafka_dir(self) -> Path:
        return self.data_dir / "kafka"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def checkpoint_dir(self) -> Path:
        return self.data_dir / "checkpoints"

    @property
    def kafka_lib_dir(self) -> Path:
        return self.vendor_dir / "kafka"

    @property
    def spark_jars_dir(self) -> Path:
        return self.vendor_dir / "spark-kafka"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and config file, with explicit overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
